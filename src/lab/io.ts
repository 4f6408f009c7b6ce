/**
 * Lab checkpoints: a folder with model.safetensors + config.json (Qwen2 keys), written
 * atomically. Saved in bf16 by default — the fp32 master is rounded to nearest even, as an
 * RL framework does when it writes a bf16 checkpoint — or in fp32 (Gate III's control).
 */
import * as path from 'node:path';
import { RlvrError } from '../errors.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { encodeFromFloat32 } from '../io/dtype.js';
import { type TensorToWrite, ensureDir, writeCheckpointFiles, writeFileAtomic } from '../io/writer.js';
import { type LabModelConfig, type Params, hfConfigJson, labConfigFromHf, paramSpecs } from './model.js';
import { VOCAB } from './tasks.js';

export type SaveDType = 'BF16' | 'F32';

export function saveLabCheckpoint(dir: string, c: LabModelConfig, p: Params, dtype: SaveDType = 'BF16', metadata: Record<string, string> = {}): void {
  ensureDir(dir);
  const tensors: TensorToWrite[] = paramSpecs(c).map((s) => ({
    name: s.name,
    dtype,
    shape: s.shape,
    data: () => {
      const a = p.get(s.name)!;
      return encodeFromFloat32(a instanceof Float32Array ? a : Float32Array.from(a), dtype);
    },
  }));
  const cfg = hfConfigJson(c);
  cfg.torch_dtype = dtype === 'BF16' ? 'bfloat16' : 'float32';
  writeCheckpointFiles(dir, tensors, { format: 'pt', ...metadata });
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  if (c.vocabSize === VOCAB.length) writeLabTokenizer(dir);
}

/**
 * A character-level `tokenizer.json` (BPE without merges) over the lab vocabulary, so
 * tokenizer-based tools (`rlvr-lens kl`) read lab checkpoints like any HF model.
 */
export function labTokenizerJson(): string {
  const vocab = Object.fromEntries(VOCAB.map((ch, i) => [ch, i]));
  return JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  }) + '\n';
}

export function writeLabTokenizer(dir: string): void {
  writeFileAtomic(path.join(dir, 'tokenizer.json'), labTokenizerJson());
}

/** Loads a lab (or any tiny Qwen2-shaped) checkpoint into fp32 master weights. */
export function loadLabCheckpoint(spec: string): { config: LabModelConfig; params: Params } {
  const src = openCheckpoint(spec);
  try {
    if (!src.config) throw new RlvrError('config.json is required to load a lab model', { file: spec, code: 'E_CONFIG_MISSING' });
    let config: LabModelConfig;
    try { config = labConfigFromHf(src.config.raw); } catch (e) {
      throw new RlvrError((e as Error).message, { file: spec, code: 'E_CONFIG_FIELD' });
    }
    const params: Params = new Map();
    for (const s of paramSpecs(config)) {
      if (!src.has(s.name)) throw new RlvrError(`tensor ${s.name} is missing`, { file: spec, code: 'E_MISSING_TENSOR' });
      const info = src.info(s.name);
      const n = s.shape.reduce((a, b) => a * b, 1);
      const got = info.shape.reduce((a: number, b: number) => a * b, 1);
      if (got !== n) throw new RlvrError(`tensor ${s.name} has shape [${info.shape.join(', ')}], expected [${s.shape.join(', ')}]`, { file: spec, code: 'E_SHAPE' });
      params.set(s.name, src.readFloat32(s.name));
    }
    return { config, params };
  } finally {
    src.close();
  }
}

export function cloneParams(p: Params): Params {
  const out: Params = new Map();
  for (const [k, v] of p) out.set(k, v.slice());
  return out;
}
