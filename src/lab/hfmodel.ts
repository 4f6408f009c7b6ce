/**
 * Inference for real Hugging Face decoders (Qwen2: q/k/v biases; Qwen3: per-head q_norm /
 * k_norm; Llama / Mistral: neither) with the lab's kernels, streaming the weights: one
 * decoder layer is decoded to fp32 at a time and dropped after use, and the lm_head is
 * read in row chunks, so peak memory is one layer plus the activations — never the model.
 */
import { RlvrError } from '../errors.js';
import type { TensorSource } from '../io/checkpoint.js';
import { linearForward, ropeApply, ropeTables, rmsNormForward, type LabModelConfig } from './model.js';

export interface HfDecoderConfig {
  modelType: string;
  hiddenSize: number; intermediateSize: number; numLayers: number;
  numHeads: number; numKvHeads: number; headDim: number; vocabSize: number;
  rmsNormEps: number; ropeTheta: number; tieWordEmbeddings: boolean;
  eosTokenIds: number[];
}

/** The decoder geometry from a checkpoint's config.json (Qwen2 / Qwen3 / Llama / Mistral). */
export function hfDecoderConfig(src: TensorSource): HfDecoderConfig {
  const c = src.config;
  if (!c) throw new RlvrError('config.json is required', { file: src.spec, code: 'E_CONFIG_MISSING' });
  const need = (v: number | undefined, k: string): number => {
    if (v === undefined || !Number.isInteger(v) || v <= 0) throw new RlvrError(`config.json lacks a positive integer ${k}`, { file: src.spec, code: 'E_CONFIG_FIELD' });
    return v;
  };
  const mt = c.modelType ?? 'unknown';
  if (!['qwen2', 'qwen3', 'llama', 'mistral'].includes(mt)) {
    throw new RlvrError(`model_type ${JSON.stringify(mt)} is not supported by kl (qwen2, qwen3, llama, mistral)`, { file: src.spec, code: 'E_UNSUPPORTED' });
  }
  const eos = c.raw.eos_token_id;
  const eosIds = Array.isArray(eos) ? eos.filter((x): x is number => typeof x === 'number') : typeof eos === 'number' ? [eos] : [];
  return {
    modelType: mt,
    hiddenSize: need(c.hiddenSize, 'hidden_size'), intermediateSize: need(c.intermediateSize, 'intermediate_size'),
    numLayers: need(c.numLayers, 'num_hidden_layers'), numHeads: need(c.numHeads, 'num_attention_heads'),
    numKvHeads: need(c.numKvHeads, 'num_key_value_heads'), headDim: need(c.headDim, 'head_dim'), vocabSize: need(c.vocabSize, 'vocab_size'),
    rmsNormEps: c.rmsNormEps, ropeTheta: c.ropeTheta, tieWordEmbeddings: c.tieWordEmbeddings || !src.has('lm_head.weight'),
    eosTokenIds: eosIds,
  };
}

function read(src: TensorSource, name: string): Float32Array {
  if (!src.has(name)) throw new RlvrError(`tensor ${name} is missing`, { file: src.spec, code: 'E_MISSING_TENSOR' });
  return src.readFloat32(name);
}
function readOpt(src: TensorSource, name: string): Float32Array | null { return src.has(name) ? src.readFloat32(name) : null; }

/**
 * Log-probabilities (fp64, [V] each) at the requested flat positions of a right-padded
 * [B, T] token batch. `onLayer` reports progress.
 */
export function streamingLogProbs(src: TensorSource, c: HfDecoderConfig, tokens: Int32Array, B: number, T: number, positions: readonly number[], onLayer?: (layer: number) => void): Float64Array[] {
  const H = c.hiddenSize, I = c.intermediateSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads;
  const Dq = Hq * D, Dkv = Hkv * D, nRep = Hq / Hkv, N = B * T, V = c.vocabSize;
  const { cos, sin } = ropeTables({ headDim: D, ropeTheta: c.ropeTheta } as LabModelConfig, T);
  const scale = 1 / Math.sqrt(D);
  // Embeddings: only the rows used, read by byte range.
  const embName = 'model.embed_tokens.weight';
  const einfo = src.info(embName);
  const x = new Float32Array(N * H);
  const rowCache = new Map<number, Float32Array>();
  const embRow = (t: number): Float32Array => {
    let r = rowCache.get(t);
    if (!r) {
      if (t < 0 || t >= einfo.shape[0]!) throw new RlvrError(`token id ${t} is outside the embedding (${einfo.shape[0]} rows)`, { file: src.spec, code: 'E_TOKEN' });
      const itemsize = einfo.byteLength / (einfo.shape[0]! * H);
      const bytes = src.readBytes(embName, t * H * itemsize, H * itemsize);
      r = decodeRow(bytes, einfo.dtype, H);
      rowCache.set(t, r);
    }
    return r;
  };
  for (let n = 0; n < N; n++) x.set(embRow(tokens[n]!), n * H);
  const h = new Float32Array(N * H), r = new Float32Array(N);
  const q = new Float32Array(N * Dq), k = new Float32Array(N * Dkv), v = new Float32Array(N * Dkv), att = new Float32Array(N * Dq), o = new Float32Array(N * H);
  const g = new Float32Array(N * I), u = new Float32Array(N * I);
  const row = new Float64Array(T);
  const headNorm = (A: Float32Array, heads: number, w: Float32Array): void => {
    const rr = new Float32Array(1);
    for (let n = 0; n < N; n++) for (let hh = 0; hh < heads; hh++) {
      const off = n * heads * D + hh * D;
      rmsNormForward(A.subarray(off, off + D), w, A.subarray(off, off + D), rr, 1, D, c.rmsNormEps);
    }
  };
  for (let l = 0; l < c.numLayers; l++) {
    const pre = `model.layers.${l}.`;
    rmsNormForward(x, read(src, pre + 'input_layernorm.weight'), h, r, N, H, c.rmsNormEps);
    linearForward(h, read(src, pre + 'self_attn.q_proj.weight'), readOpt(src, pre + 'self_attn.q_proj.bias'), q, N, H, Dq);
    linearForward(h, read(src, pre + 'self_attn.k_proj.weight'), readOpt(src, pre + 'self_attn.k_proj.bias'), k, N, H, Dkv);
    linearForward(h, read(src, pre + 'self_attn.v_proj.weight'), readOpt(src, pre + 'self_attn.v_proj.bias'), v, N, H, Dkv);
    const qn = readOpt(src, pre + 'self_attn.q_norm.weight'), kn = readOpt(src, pre + 'self_attn.k_norm.weight');
    if (qn) headNorm(q, Hq, qn);
    if (kn) headNorm(k, Hkv, kn);
    for (let n = 0; n < N; n++) {
      ropeApply(q, n * Dq, Hq, D, cos, sin, n % T, 1);
      ropeApply(k, n * Dkv, Hkv, D, cos, sin, n % T, 1);
    }
    att.fill(0);
    for (let b = 0; b < B; b++) for (let hh = 0; hh < Hq; hh++) {
      const gk = Math.floor(hh / nRep);
      for (let t = 0; t < T; t++) {
        const qo = (b * T + t) * Dq + hh * D;
        let mx = -Infinity;
        for (let s = 0; s <= t; s++) {
          const ko = (b * T + s) * Dkv + gk * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d]! * k[ko + d]!;
          dot *= scale; row[s] = dot; if (dot > mx) mx = dot;
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) { const e = Math.exp(row[s]! - mx); row[s] = e; sum += e; }
        for (let s = 0; s <= t; s++) {
          const pr = Math.fround(row[s]! / sum);
          const vo = (b * T + s) * Dkv + gk * D;
          for (let d = 0; d < D; d++) att[qo + d] += pr * v[vo + d]!;
        }
      }
    }
    linearForward(att, read(src, pre + 'self_attn.o_proj.weight'), readOpt(src, pre + 'self_attn.o_proj.bias'), o, N, Dq, H);
    for (let i = 0; i < N * H; i++) x[i] += o[i]!;
    rmsNormForward(x, read(src, pre + 'post_attention_layernorm.weight'), h, r, N, H, c.rmsNormEps);
    linearForward(h, read(src, pre + 'mlp.gate_proj.weight'), null, g, N, H, I);
    linearForward(h, read(src, pre + 'mlp.up_proj.weight'), null, u, N, H, I);
    for (let i = 0; i < N * I; i++) { const z = g[i]!; g[i] = (z / (1 + Math.exp(-z))) * u[i]!; }
    linearForward(g, read(src, pre + 'mlp.down_proj.weight'), null, o, N, I, H);
    for (let i = 0; i < N * H; i++) x[i] += o[i]!;
    onLayer?.(l);
  }
  const P = positions.length;
  const hf = new Float32Array(P * H), rf = new Float32Array(P), xs = new Float32Array(P * H);
  positions.forEach((pos, i) => xs.set(x.subarray(pos * H, pos * H + H), i * H));
  rmsNormForward(xs, read(src, 'model.norm.weight'), hf, rf, P, H, c.rmsNormEps);
  // lm_head in row chunks (a 151k × 1536 head is ~0.9 GB in fp32).
  const head = c.tieWordEmbeddings ? embName : 'lm_head.weight';
  const hinfo = src.info(head);
  const itemsize = hinfo.byteLength / (V * H);
  const logits = new Float32Array(P * V);
  const chunk = Math.max(1, Math.floor((1 << 24) / H));
  const part = new Float32Array(P * chunk);
  for (let v0 = 0; v0 < V; v0 += chunk) {
    const rows = Math.min(chunk, V - v0);
    const W = decodeRow(src.readBytes(head, v0 * H * itemsize, rows * H * itemsize), hinfo.dtype, rows * H);
    linearForward(hf, W, null, part, P, H, rows);
    for (let i = 0; i < P; i++) logits.set(part.subarray(i * rows, i * rows + rows), i * V + v0);
  }
  const out: Float64Array[] = [];
  for (let i = 0; i < P; i++) {
    const lp = new Float64Array(V);
    let mx = -Infinity;
    for (let t = 0; t < V; t++) if (logits[i * V + t]! > mx) mx = logits[i * V + t]!;
    let s = 0;
    for (let t = 0; t < V; t++) s += Math.exp(logits[i * V + t]! - mx);
    const lse = mx + Math.log(s);
    for (let t = 0; t < V; t++) lp[t] = logits[i * V + t]! - lse;
    out.push(lp);
  }
  return out;
}

function decodeRow(bytes: Uint8Array, dtype: string, n: number): Float32Array {
  const out = new Float32Array(n);
  const src = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  if (dtype === 'BF16') {
    const h = new Uint16Array(src.buffer, src.byteOffset, n), ou = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) ou[i] = h[i]! << 16;
  } else if (dtype === 'F32') out.set(new Float32Array(src.buffer, src.byteOffset, n));
  else if (dtype === 'F16') {
    const h = new Uint16Array(src.buffer, src.byteOffset, n);
    for (let i = 0; i < n; i++) out[i] = f16(h[i]!);
  } else throw new RlvrError(`dtype ${dtype} is not supported for inference`, { code: 'E_DTYPE' });
  return out;
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
