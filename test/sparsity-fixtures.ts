/**
 * The deterministic generator of fixtures/sparsity/ (tiny Qwen2-named checkpoints, ~100 KB
 * in all). `npx tsx test/sparsity-fixtures.ts` rewrites them (and, with the goldens, the
 * tests check that regenerating gives the committed bytes).
 *
 * - base/        bf16, 2 layers, hidden 24; one NaN in layers.0 k_proj (entry 3); an I64
 *                step counter (non-float: skipped).
 * - tuned-a/     derived (30% changed), 2 shards + index: the sharded case.
 * - tuned-b/     derived (5% changed) then edited: layers.1 down_proj removed (missing),
 *                `extra.weight` added, layers.1 o_proj reshaped (shape mismatch),
 *                model.norm.weight stored as F32 (dtype change) with one sub-bf16 and one
 *                large change, q_proj of layer 0 gets a NaN (entry 0) and +Inf (entry 1).
 * - base32/, tuned32/  fp32 pair: 20% changed by bf16-sized steps, 20% more only below bf16
 *                resolution (bf16-visible sparsity > η-rule sparsity).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { type TensorToWrite, writeCheckpointFiles } from '../src/io/writer.js';
import { generateSynthetic } from '../src/synth/generate.js';

export const FIXTURE_DIMS = { numLayers: 2, headDim: 2, intermediateSize: 16, vocabSize: 32 };

function readAll(dir: string): TensorToWrite[] {
  const src = openCheckpoint(dir);
  try {
    return src.names.map((n) => { const i = src.info(n); return { name: n, dtype: i.dtype, shape: [...i.shape], data: src.readBytes(n) }; });
  } finally { src.close(); }
}

function setBf16(t: TensorToWrite, i: number, bits: number): void {
  const d = t.data as Uint8Array;
  d[2 * i] = bits & 0xff; d[2 * i + 1] = bits >>> 8;
}

/** Writes all fixtures under `dir` (which is emptied first). */
export function writeSparsityFixtures(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const tmp = path.join(dir, '.tmp');
  // base
  generateSynthetic({ out: path.join(tmp, 'base'), scale: 1, dims: FIXTURE_DIMS, seed: 11, record: false });
  const base = readAll(path.join(tmp, 'base'));
  setBf16(base.find((t) => t.name === 'model.layers.0.self_attn.k_proj.weight')!, 3, 0x7fc0);
  base.push({ name: 'model.step', dtype: 'I64', shape: [1], data: new Uint8Array(8) });
  writeCheckpointFiles(path.join(dir, 'base'), base, { format: 'pt' });
  fs.copyFileSync(path.join(tmp, 'base', 'config.json'), path.join(dir, 'base', 'config.json'));
  // tuned-a: sharded
  generateSynthetic({ out: path.join(dir, 'tuned-a'), base: path.join(dir, 'base'), changedFraction: 0.3, seed: 12, sharded: true, record: false });
  // tuned-b: edited
  generateSynthetic({ out: path.join(tmp, 'tuned-b'), base: path.join(dir, 'base'), changedFraction: 0.05, seed: 13, record: false });
  let tb = readAll(path.join(tmp, 'tuned-b')).filter((t) => t.name !== 'model.layers.1.mlp.down_proj.weight');
  tb.push({ name: 'extra.weight', dtype: 'BF16', shape: [2], data: new Uint8Array(4) });
  const o = tb.find((t) => t.name === 'model.layers.1.self_attn.o_proj.weight')!;
  o.shape = [o.shape[1]! * 2, o.shape[0]! / 2];
  const norm = tb.find((t) => t.name === 'model.norm.weight')!;
  const nb = norm.data as Uint8Array;
  const f = new Float32Array(nb.byteLength / 2);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < f.length; i++) u[i] = (nb[2 * i]! | (nb[2 * i + 1]! << 8)) << 16;
  u[0] = u[0]! + 1; // below bf16 resolution: the η rule says unchanged, bits differ
  f[1] = f[1]! * 1.5; // a real change
  tb = tb.map((t) => (t === norm ? { ...t, dtype: 'F32', data: new Uint8Array(f.buffer) } : t));
  const q = tb.find((t) => t.name === 'model.layers.0.self_attn.q_proj.weight')!;
  setBf16(q, 0, 0x7fc1);
  setBf16(q, 1, 0x7f80);
  writeCheckpointFiles(path.join(dir, 'tuned-b'), tb, { format: 'pt' });
  // fp32 pair
  generateSynthetic({ out: path.join(dir, 'base32'), scale: 1, dims: { ...FIXTURE_DIMS, numLayers: 1 }, dtype: 'F32', seed: 21, record: false });
  generateSynthetic({ out: path.join(dir, 'tuned32'), base: path.join(dir, 'base32'), changedFraction: 0.2, subBf16Fraction: 0.25, seed: 22, record: false });
  fs.rmSync(tmp, { recursive: true, force: true });
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && path.resolve(process.argv[1]) === self) {
  const root = path.resolve(path.dirname(self), '..');
  writeSparsityFixtures(path.join(root, 'fixtures', 'sparsity', 'ckpt'));
  process.stdout.write('wrote fixtures/sparsity/ckpt\n');
}
