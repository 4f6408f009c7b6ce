/** The parts of a Hugging Face `config.json` the probes and interventions need. */
import { FormatError } from '../errors.js';

export interface ModelConfig {
  /** `model_type`, e.g. "qwen2", "qwen3", "llama", "mistral", "qwen2_moe", "mixtral". */
  readonly modelType: string | undefined;
  readonly architectures: readonly string[];
  readonly numLayers: number | undefined;
  readonly hiddenSize: number | undefined;
  readonly intermediateSize: number | undefined;
  readonly numHeads: number | undefined;
  readonly numKvHeads: number | undefined;
  readonly headDim: number | undefined;
  readonly vocabSize: number | undefined;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly tieWordEmbeddings: boolean;
  readonly numExperts: number | undefined;
  /** The raw JSON, for anything else. */
  readonly raw: Readonly<Record<string, unknown>>;
}

function num(raw: Record<string, unknown>, ...keys: string[]): number | undefined {
  for (const k of keys) {
    const v = raw[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

/** Parses config.json text; `file` is used in error messages. */
export function parseModelConfig(file: string, text: string): ModelConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, 'E_CONFIG_JSON', `config is not valid JSON (${(e as Error).message.slice(0, 100)})`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new FormatError(file, 'E_CONFIG_JSON', 'config is not a JSON object');
  }
  const r = raw as Record<string, unknown>;
  const numHeads = num(r, 'num_attention_heads', 'n_head');
  const hiddenSize = num(r, 'hidden_size', 'n_embd', 'd_model');
  const headDim = num(r, 'head_dim') ?? (numHeads && hiddenSize ? hiddenSize / numHeads : undefined);
  return {
    modelType: typeof r.model_type === 'string' ? r.model_type : undefined,
    architectures: Array.isArray(r.architectures) ? r.architectures.filter((a): a is string => typeof a === 'string') : [],
    numLayers: num(r, 'num_hidden_layers', 'n_layer'),
    hiddenSize,
    intermediateSize: num(r, 'intermediate_size', 'moe_intermediate_size'),
    numHeads,
    numKvHeads: num(r, 'num_key_value_heads') ?? numHeads,
    headDim,
    vocabSize: num(r, 'vocab_size'),
    rmsNormEps: num(r, 'rms_norm_eps', 'layer_norm_eps') ?? 1e-6,
    ropeTheta: num(r, 'rope_theta') ?? 10000,
    tieWordEmbeddings: r.tie_word_embeddings === true,
    numExperts: num(r, 'num_experts', 'num_local_experts', 'n_routed_experts'),
    raw: r,
  };
}

export interface AttentionLayout {
  numLayers: number;
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** numHeads / numKvHeads. */
  nRep: number;
}

/** The attention layout, or a FormatError naming the missing/inconsistent field. */
export function requireAttentionLayout(file: string, c: ModelConfig | null): AttentionLayout {
  if (!c) throw new FormatError(file, 'E_CONFIG_MISSING', 'config.json is required for head layout but was not found');
  const need = (v: number | undefined, key: string): number => {
    if (v === undefined || !Number.isInteger(v) || v <= 0) {
      throw new FormatError(file, 'E_CONFIG_FIELD', `config.json lacks a positive integer ${key}`);
    }
    return v;
  };
  const numLayers = need(c.numLayers, 'num_hidden_layers');
  const hiddenSize = need(c.hiddenSize, 'hidden_size');
  const numHeads = need(c.numHeads, 'num_attention_heads');
  const numKvHeads = need(c.numKvHeads, 'num_key_value_heads');
  const headDim = need(c.headDim, 'head_dim');
  if (numHeads % numKvHeads !== 0) {
    throw new FormatError(file, 'E_CONFIG_FIELD', `num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`);
  }
  return { numLayers, hiddenSize, numHeads, numKvHeads, headDim, nRep: numHeads / numKvHeads };
}
