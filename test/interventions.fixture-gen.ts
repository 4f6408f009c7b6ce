/**
 * Seeded generator of the tiny attention checkpoints in fixtures/interventions/
 * (Qwen2-like: q/k/v biases, GQA 4q/2kv, sharded with an index; Qwen3-like: q_norm/k_norm,
 * head_dim·heads ≠ hidden, GQA 8q/2kv, one file), and of ad-hoc variants for tests.
 * Regenerate the committed fixtures with `npx tsx test/interventions.fixture-gen.ts`;
 * a test checks the committed bytes equal a fresh generation.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeFromFloat32 } from '../src/io/dtype.js';
import { type TensorToWrite, writeCheckpointFiles } from '../src/io/writer.js';
import { Rng } from '../src/util/random.js';

export interface TinySpec {
  family: 'qwen2' | 'qwen3' | 'llama' | 'mistral';
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  seed: number;
  /** Number of shards (≥ 2 writes an index), default 1. */
  shards?: number;
  dtype?: 'BF16' | 'F32' | 'F16';
}

export const QWEN2_TINY: TinySpec = { family: 'qwen2', layers: 3, hidden: 64, heads: 4, kvHeads: 2, headDim: 16, intermediate: 96, vocab: 48, seed: 11, shards: 2 };
export const QWEN3_TINY: TinySpec = { family: 'qwen3', layers: 2, hidden: 64, heads: 8, kvHeads: 2, headDim: 16, intermediate: 96, vocab: 48, seed: 12 };

function config(s: TinySpec): Record<string, unknown> {
  const arch = { qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM' }[s.family];
  return {
    architectures: [arch], model_type: s.family, hidden_size: s.hidden, intermediate_size: s.intermediate,
    num_hidden_layers: s.layers, num_attention_heads: s.heads, num_key_value_heads: s.kvHeads, head_dim: s.headDim,
    vocab_size: s.vocab, rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: 128,
    hidden_act: 'silu', tie_word_embeddings: false, torch_dtype: (s.dtype ?? 'BF16') === 'BF16' ? 'bfloat16' : (s.dtype === 'F16' ? 'float16' : 'float32'),
    ...(s.family === 'qwen2' ? { use_sliding_window: false } : {}),
    ...(s.family === 'qwen3' || s.family === 'llama' ? { attention_bias: false } : {}),
  };
}

/** The tensors of a tiny model, HF names, `[out, in]` layout. */
export function tinyTensors(s: TinySpec): TensorToWrite[] {
  const rng = new Rng(s.seed);
  const dtype = s.dtype ?? 'BF16';
  const out: TensorToWrite[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0): void => {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < v.length; i++) v[i] = mean + std * rng.normal();
    out.push({ name, dtype, shape, data: encodeFromFloat32(v, dtype) });
  };
  const { hidden: h, heads, kvHeads, headDim: d, intermediate: m } = s;
  add('model.embed_tokens.weight', [s.vocab, h], 0.5);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    add(p + 'input_layernorm.weight', [h], 0.1, 1);
    add(p + 'self_attn.q_proj.weight', [heads * d, h], 1 / Math.sqrt(h));
    add(p + 'self_attn.k_proj.weight', [kvHeads * d, h], 1 / Math.sqrt(h));
    add(p + 'self_attn.v_proj.weight', [kvHeads * d, h], 1 / Math.sqrt(h));
    add(p + 'self_attn.o_proj.weight', [h, heads * d], 1 / Math.sqrt(heads * d));
    if (s.family === 'qwen2') {
      add(p + 'self_attn.q_proj.bias', [heads * d], 0.3);
      add(p + 'self_attn.k_proj.bias', [kvHeads * d], 0.3);
      add(p + 'self_attn.v_proj.bias', [kvHeads * d], 0.3);
    }
    if (s.family === 'qwen3') {
      add(p + 'self_attn.q_norm.weight', [d], 0.2, 1);
      add(p + 'self_attn.k_norm.weight', [d], 0.2, 1);
    }
    add(p + 'post_attention_layernorm.weight', [h], 0.1, 1);
    add(p + 'mlp.gate_proj.weight', [m, h], 1 / Math.sqrt(h));
    add(p + 'mlp.up_proj.weight', [m, h], 1 / Math.sqrt(h));
    add(p + 'mlp.down_proj.weight', [h, m], 1 / Math.sqrt(m));
  }
  add('model.norm.weight', [h], 0.1, 1);
  add('lm_head.weight', [s.vocab, h], 1 / Math.sqrt(h));
  return out;
}

/** Writes a tiny checkpoint folder (config.json, generation_config.json, tokenizer_config.json, weights). */
export function generateTinyCheckpoint(dir: string, s: TinySpec): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config(s), null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }, null, 2) + '\n');
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ model_max_length: 128, tokenizer_class: 'PreTrainedTokenizerFast' }, null, 2) + '\n');
  const tensors = tinyTensors(s);
  const shards = s.shards ?? 1;
  if (shards < 2) {
    writeCheckpointFiles(dir, tensors, { format: 'pt' });
    return;
  }
  // Contiguous split by tensor order, as transformers' save_pretrained does.
  const per = Math.ceil(tensors.length / shards);
  const of = new Map(tensors.map((t, i) => [t.name, `model-${String(Math.floor(i / per) + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`]));
  writeCheckpointFiles(dir, tensors, { format: 'pt' }, (n) => of.get(n)!);
}

export const FIXTURES: Record<string, TinySpec> = { 'qwen2-tiny': QWEN2_TINY, 'qwen3-tiny': QWEN3_TINY };

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  const root = path.resolve(path.dirname(self), '..', 'fixtures', 'interventions');
  for (const [name, spec] of Object.entries(FIXTURES)) {
    const dir = path.join(root, name);
    fs.rmSync(dir, { recursive: true, force: true });
    generateTinyCheckpoint(dir, spec);
    process.stdout.write(`wrote ${dir}\n`);
  }
}
