/**
 * Tensor-name parsing for Llama / Qwen2 / Qwen3 / Mistral and MoE (Qwen-MoE, Mixtral,
 * DeepSeek-style) checkpoints: layer index, module kind, expert index. The patterns are
 * data (MODULE_PATTERNS), tried in order; the first match wins.
 */

export const MODULE_KINDS = [
  'q', 'k', 'v', 'o', 'gate', 'up', 'down', 'embed', 'lm_head', 'norm', 'bias', 'router', 'expert', 'other',
] as const;
export type ModuleKind = (typeof MODULE_KINDS)[number];

/** The projection a bias or expert weight belongs to (q, k, v, o, gate, up, down), if any. */
export type Projection = 'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down';

export interface ParsedName {
  readonly name: string;
  /** Decoder layer index, or null for embeddings, final norm, lm_head. */
  readonly layer: number | null;
  readonly kind: ModuleKind;
  /** For kind 'bias' and 'expert': the projection it belongs to. */
  readonly projection: Projection | null;
  /** Expert index for routed experts; -1 for a shared expert; null otherwise. */
  readonly expert: number | null;
  /** `weight`, `bias`, or another suffix. */
  readonly param: string;
}

interface Pattern { re: RegExp; kind: ModuleKind }

const PROJ: Record<string, Projection> = {
  q_proj: 'q', k_proj: 'k', v_proj: 'v', o_proj: 'o', gate_proj: 'gate', up_proj: 'up', down_proj: 'down',
  w1: 'gate', w3: 'up', w2: 'down', // Mixtral experts
  wq: 'q', wk: 'k', wv: 'v', wo: 'o',
};

/** Order matters: specific (norm, router, experts) before generic projections. */
export const MODULE_PATTERNS: readonly Pattern[] = [
  { re: /(^|\.)(embed_tokens|wte|tok_embeddings|word_embeddings)\.weight$/, kind: 'embed' },
  { re: /(^|\.)(lm_head|output)\.weight$/, kind: 'lm_head' },
  { re: /(norm|layernorm|ln_\w+|ln_f)\.(weight|bias)$/, kind: 'norm' },
  { re: /\.(mlp|block_sparse_moe)\.gate\.(weight|bias|e_score_correction_bias)$/, kind: 'router' },
  { re: /\.shared_expert_gate\.weight$/, kind: 'router' },
  { re: /\.experts\.\d+\./, kind: 'expert' },
  { re: /\.(shared_experts?)\./, kind: 'expert' },
  { re: /\.(q_proj|wq)\.weight$/, kind: 'q' },
  { re: /\.(k_proj|wk)\.weight$/, kind: 'k' },
  { re: /\.(v_proj|wv)\.weight$/, kind: 'v' },
  { re: /\.(o_proj|wo)\.weight$/, kind: 'o' },
  { re: /\.gate_proj\.weight$/, kind: 'gate' },
  { re: /\.up_proj\.weight$/, kind: 'up' },
  { re: /\.down_proj\.weight$/, kind: 'down' },
  { re: /\.bias$/, kind: 'bias' },
];

const LAYER_RE = /(?:^|\.)(?:layers|h|blocks|layer)\.(\d+)\./;
const EXPERT_RE = /\.experts\.(\d+)\./;
const PROJ_RE = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj|w1|w2|w3|wq|wk|wv|wo)\.(\w+)$/;

export function parseTensorName(name: string): ParsedName {
  const lm = LAYER_RE.exec(name);
  const layer = lm ? Number(lm[1]) : null;
  let kind: ModuleKind = 'other';
  for (const p of MODULE_PATTERNS) {
    if (p.re.test(name)) { kind = p.kind; break; }
  }
  const pm = PROJ_RE.exec(name);
  const projection = pm ? PROJ[pm[1]!] ?? null : null;
  const em = EXPERT_RE.exec(name);
  const expert = em ? Number(em[1]) : /\.shared_experts?\./.test(name) ? -1 : null;
  const param = name.slice(name.lastIndexOf('.') + 1);
  return { name, layer, kind, projection: kind === 'bias' || kind === 'expert' ? projection : null, expert, param };
}

/** True for the 2-D weights of linear layers (attention and MLP projections, experts, router,
 * embeddings and lm_head excluded). This is the set "linear weights only" refers to. */
export function isLinearWeight(p: ParsedName, shape: readonly number[]): boolean {
  if (shape.length !== 2 || p.param !== 'weight') return false;
  return p.kind === 'q' || p.kind === 'k' || p.kind === 'v' || p.kind === 'o' || p.kind === 'gate' ||
    p.kind === 'up' || p.kind === 'down' || p.kind === 'expert' || p.kind === 'router';
}

/** A natural sort key so that layer 10 comes after layer 9. */
export function compareTensorNames(a: string, b: string): number {
  const ca = a.match(/\d+|\D+/g) ?? [];
  const cb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const x = ca[i]!, y = cb[i]!;
    if (x === y) continue;
    const dx = /^\d/.test(x), dy = /^\d/.test(y);
    if (dx && dy) { const d = Number(x) - Number(y); if (d !== 0) return d; }
    return x < y ? -1 : 1;
  }
  return ca.length - cb.length || (a < b ? -1 : a > b ? 1 : 0);
}
