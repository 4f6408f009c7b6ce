/**
 * The tensor layout of a Qwen2 decoder (DeepSeek-R1-Distill-Qwen-1.5B by default) as data:
 * exact Hugging Face names, shapes in PyTorch `[out, in]` layout, and the matching
 * config.json. `--scale` shrinks the widths (head_dim, intermediate, vocab) while keeping
 * the names, head counts and the layer count, so every probe sees the same structure.
 */

export interface Qwen2Dims {
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** numHeads · headDim. */
  hiddenSize: number;
  intermediateSize: number;
  vocabSize: number;
}

/** DeepSeek-R1-Distill-Qwen-1.5B (Qwen2ForCausalLM, bf16, untied lm_head, q/k/v biases). */
export const QWEN2_1P5B: Readonly<Qwen2Dims> = {
  numLayers: 28, numHeads: 12, numKvHeads: 2, headDim: 128, hiddenSize: 1536,
  intermediateSize: 8960, vocabSize: 151936,
};

/**
 * Dims at `scale` (1 = full size): widths scale linearly, so bytes scale ≈ scale². head_dim
 * stays even (RoPE pairs). `override` replaces any field afterwards (tiny test fixtures).
 */
export function scaledQwen2Dims(scale = 1, override: Partial<Qwen2Dims> = {}): Qwen2Dims {
  if (!(scale > 0 && scale <= 1)) throw new RangeError(`scale must be in (0, 1], got ${scale}`);
  const b = QWEN2_1P5B;
  const headDim = Math.max(2, 2 * Math.round((b.headDim * scale) / 2));
  const d: Qwen2Dims = {
    numLayers: b.numLayers,
    numHeads: b.numHeads,
    numKvHeads: b.numKvHeads,
    headDim,
    hiddenSize: b.numHeads * headDim,
    intermediateSize: Math.max(1, Math.round(b.intermediateSize * scale)),
    vocabSize: Math.max(1, Math.round(b.vocabSize * scale)),
    ...override,
  };
  if (override.hiddenSize === undefined) d.hiddenSize = d.numHeads * d.headDim;
  return d;
}

/** What a tensor is, for choosing its synthetic value distribution. */
export type SynthRole = 'embed' | 'linear' | 'bias' | 'norm';

export interface SynthTensorSpec {
  name: string;
  shape: number[];
  role: SynthRole;
}

/** Every tensor of the model, in the order Hugging Face lists them (embed, layers, norm, lm_head). */
export function qwen2Tensors(d: Qwen2Dims): SynthTensorSpec[] {
  const h = d.hiddenSize, kv = d.numKvHeads * d.headDim, q = d.numHeads * d.headDim, m = d.intermediateSize;
  const out: SynthTensorSpec[] = [{ name: 'model.embed_tokens.weight', shape: [d.vocabSize, h], role: 'embed' }];
  for (let l = 0; l < d.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [h], role: 'norm' },
      { name: `${p}self_attn.q_proj.weight`, shape: [q, h], role: 'linear' },
      { name: `${p}self_attn.q_proj.bias`, shape: [q], role: 'bias' },
      { name: `${p}self_attn.k_proj.weight`, shape: [kv, h], role: 'linear' },
      { name: `${p}self_attn.k_proj.bias`, shape: [kv], role: 'bias' },
      { name: `${p}self_attn.v_proj.weight`, shape: [kv, h], role: 'linear' },
      { name: `${p}self_attn.v_proj.bias`, shape: [kv], role: 'bias' },
      { name: `${p}self_attn.o_proj.weight`, shape: [h, q], role: 'linear' },
      { name: `${p}mlp.gate_proj.weight`, shape: [m, h], role: 'linear' },
      { name: `${p}mlp.up_proj.weight`, shape: [m, h], role: 'linear' },
      { name: `${p}mlp.down_proj.weight`, shape: [h, m], role: 'linear' },
      { name: `${p}post_attention_layernorm.weight`, shape: [h], role: 'norm' },
    );
  }
  out.push(
    { name: 'model.norm.weight', shape: [h], role: 'norm' },
    { name: 'lm_head.weight', shape: [d.vocabSize, h], role: 'embed' },
  );
  return out;
}

/** A Qwen2 config.json for these dims (the fields `parseModelConfig` reads, as HF writes them). */
export function qwen2ConfigJson(d: Qwen2Dims): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    attention_dropout: 0.0,
    bos_token_id: 151643,
    eos_token_id: 151643,
    hidden_act: 'silu',
    hidden_size: d.hiddenSize,
    head_dim: d.headDim,
    initializer_range: 0.02,
    intermediate_size: d.intermediateSize,
    max_position_embeddings: 131072,
    max_window_layers: 21,
    model_type: 'qwen2',
    num_attention_heads: d.numHeads,
    num_hidden_layers: d.numLayers,
    num_key_value_heads: d.numKvHeads,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    sliding_window: 4096,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
    use_cache: true,
    use_sliding_window: false,
    vocab_size: d.vocabSize,
  };
}
