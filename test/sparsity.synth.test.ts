/** The synthetic Qwen2 generator: exact 1.5B layout, determinism, and the documented change model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { bf16ToNumber } from '../src/io/dtype.js';
import { parseModelConfig, requireAttentionLayout } from '../src/model/config.js';
import { isLinearWeight, parseTensorName } from '../src/model/names.js';
import type { BitMask } from '../src/probes/mask.js';
import { updateSparsity } from '../src/probes/sparsity.js';
import { ensureSynthetic, ensureSyntheticSet, generateSynthetic } from '../src/synth/generate.js';
import { QWEN2_1P5B, qwen2ConfigJson, qwen2Tensors, scaledQwen2Dims } from '../src/synth/qwen2.js';
import { tempDir } from './helpers.js';

test('the full-size layout is DeepSeek-R1-Distill-Qwen-1.5B: 339 tensors, 1,777,088,000 parameters', () => {
  const ts = qwen2Tensors(QWEN2_1P5B);
  assert.equal(ts.length, 1 + 28 * 12 + 2);
  assert.equal(ts.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0), 1_777_088_000);
  const shape = (n: string): number[] => ts.find((t) => t.name === n)!.shape;
  assert.deepEqual(shape('model.embed_tokens.weight'), [151936, 1536]);
  assert.deepEqual(shape('lm_head.weight'), [151936, 1536]);
  assert.deepEqual(shape('model.layers.27.self_attn.k_proj.weight'), [256, 1536]);
  assert.deepEqual(shape('model.layers.0.self_attn.q_proj.bias'), [1536]);
  assert.deepEqual(shape('model.layers.5.mlp.down_proj.weight'), [1536, 8960]);
  assert.deepEqual(shape('model.layers.5.mlp.gate_proj.weight'), [8960, 1536]);
  assert.equal(ts.filter((t) => isLinearWeight(parseTensorName(t.name), t.shape)).length, 28 * 7);
  const cfg = parseModelConfig('config.json', JSON.stringify(qwen2ConfigJson(QWEN2_1P5B)));
  assert.deepEqual(requireAttentionLayout('config.json', cfg), { numLayers: 28, hiddenSize: 1536, numHeads: 12, numKvHeads: 2, headDim: 128, nRep: 6 });
  assert.equal(cfg.tieWordEmbeddings, false);
  const q = scaledQwen2Dims(0.25);
  assert.deepEqual([q.headDim, q.hiddenSize, q.intermediateSize, q.vocabSize, q.numLayers], [32, 384, 2240, 37984, 28]);
  assert.throws(() => scaledQwen2Dims(1.5), /scale/);
});

const DIMS = { numLayers: 2, headDim: 4, intermediateSize: 64, vocabSize: 96 };

test('same seed → byte-identical files (single and sharded); another seed differs', () => {
  const d = tempDir();
  const a = generateSynthetic({ out: path.join(d, 'a'), dims: DIMS, seed: 5 });
  const b = generateSynthetic({ out: path.join(d, 'b'), dims: DIMS, seed: 5, chunkElems: 64 });
  const c = generateSynthetic({ out: path.join(d, 'c'), dims: DIMS, seed: 6 });
  const bytes = (r: { files: string[] }): Buffer => fs.readFileSync(r.files[0]!);
  assert.ok(bytes(a).equals(bytes(b)), 'chunk size does not change the bytes');
  assert.ok(!bytes(a).equals(bytes(c)));
  const s = generateSynthetic({ out: path.join(d, 's'), dims: DIMS, seed: 5, sharded: 3 });
  assert.equal(s.files.length, 4);
  const one = openCheckpoint(a.dir), three = openCheckpoint(s.dir);
  try {
    assert.deepEqual(three.names, one.names);
    for (const n of one.names) assert.ok(Buffer.from(one.readBytes(n)).equals(Buffer.from(three.readBytes(n))), n);
    assert.equal(one.config?.numKvHeads, 2);
    // linear weights look like N(0, 0.02²) in bf16
    const w = one.readFloat64('model.layers.0.mlp.up_proj.weight');
    const mean = w.reduce((x, y) => x + y, 0) / w.length;
    const sd = Math.sqrt(w.reduce((x, y) => x + (y - mean) ** 2, 0) / w.length);
    assert.ok(Math.abs(mean) < 0.003 && Math.abs(sd - 0.02) < 0.002, `mean ${mean} sd ${sd}`);
    const norm = one.readFloat64('model.norm.weight');
    assert.ok(norm.every((v) => v > 0.7 && v < 1.3));
  } finally { one.close(); three.close(); }
});

test('a derived tuned model: the recorded change count is exact; changes favour small magnitudes and hot rows', async () => {
  const d = tempDir();
  const base = generateSynthetic({ out: path.join(d, 'base'), dims: { ...DIMS, intermediateSize: 512 }, seed: 1 });
  const F = 0.2;
  const tuned = generateSynthetic({ out: path.join(d, 'tuned'), base: base.dir, changedFraction: F, seed: 2 });
  assert.ok(fs.existsSync(path.join(d, 'tuned', 'config.json')));
  const masks = new Map<string, BitMask>();
  const doc = await updateSparsity(base.dir, [tuned.dir], { threads: 1, onMask: (_t, n, m) => masks.set(n, m) });
  const s = doc.summary[0]!;
  assert.equal(s.overall.n - s.overall.unchanged, tuned.changed);
  assert.ok(Math.abs(tuned.changed! - tuned.expectedChanged!) < 4 * Math.sqrt(tuned.expectedChanged!), 'Bernoulli count near its mean');
  assert.ok(Math.abs(1 - s.overall.sparsity - F) < 0.03, `changed fraction ${1 - s.overall.sparsity}`);
  // magnitude: entries below the median |w0| change more often than those above
  const src = openCheckpoint(base.dir);
  try {
    const name = 'model.layers.0.mlp.gate_proj.weight';
    const w = src.readFloat64(name).map(Math.abs);
    const m = masks.get(name)!;
    const med = [...w].sort((a, b) => a - b)[w.length >> 1]!;
    let lo = 0, loN = 0, hi = 0, hiN = 0;
    w.forEach((v, i) => { if (v < med) { loN++; lo += m.get(i) ? 1 : 0; } else { hiN++; hi += m.get(i) ? 1 : 0; } });
    assert.ok(lo / loN > 1.3 * (hi / hiN), `small ${lo / loN} vs large ${hi / hiN}`);
    // rows: the busiest 10% of rows change at least twice as often as the median row
    const rows = [...m.rowCounts()].sort((a, b) => a - b);
    const top = rows.slice(Math.floor(rows.length * 0.9));
    assert.ok(top.reduce((a, b) => a + b, 0) / top.length > 2 * rows[rows.length >> 1]!);
    // every changed entry moved by 1–3 bf16 steps and stayed finite
    const t = openCheckpoint(tuned.dir);
    try {
      const a = new Uint16Array(src.readBytes(name).buffer.slice(0)), b = new Uint16Array(t.readBytes(name).buffer.slice(0));
      for (let i = 0; i < a.length; i++) {
        if (a[i] === b[i]) continue;
        assert.equal(a[i]! & 0x8000, b[i]! & 0x8000);
        assert.ok(Math.abs((a[i]! & 0x7fff) - (b[i]! & 0x7fff)) <= 3 && Number.isFinite(bf16ToNumber(b[i]!)));
      }
    } finally { t.close(); }
  } finally { src.close(); }
});

test('fp32 base with sub-bf16 changes: bf16-visible sparsity exceeds the η-rule sparsity; ensureSyntheticSet reuses', async () => {
  const d = tempDir();
  const set = ensureSyntheticSet({ dir: d, dims: DIMS, dtype: 'F32', changedFractions: [0.1, 0.3], subBf16Fraction: 0.3, seed: 3 });
  assert.equal(set.tuned.length, 2);
  const doc = await updateSparsity(set.base.dir, set.tuned.map((t) => t.dir), { threads: 1 });
  for (const s of doc.summary) assert.ok(s.overall.bf16VisibleSparsity > s.overall.sparsity);
  assert.ok(doc.summary[0]!.overall.bf16VisibleSparsity > doc.summary[1]!.overall.bf16VisibleSparsity);
  const mtime = fs.statSync(set.tuned[1]!.files[0]!).mtimeMs;
  const again = ensureSynthetic({ out: set.tuned[1]!.dir, base: set.base.dir, changedFraction: 0.3, subBf16Fraction: 0.3, seed: 5 });
  assert.equal(fs.statSync(again.files[0]!).mtimeMs, mtime, 'reused, not rewritten');
  assert.equal(again.changed, set.tuned[1]!.changed);
});

test('spectrumDecay: linear weights get a power-law spectrum (σ₁/σ_j ≈ j^a), RMS kept; i.i.d. stays flat; tuned models follow a regenerated base', async () => {
  const { exactSVD } = await import('../src/linalg/svd-dense.js');
  const d = tempDir();
  const dims = { ...DIMS, hiddenSize: 64, numHeads: 4, headDim: 16, numKvHeads: 2, intermediateSize: 192 };
  const flat = generateSynthetic({ out: path.join(d, 'flat'), dims, seed: 2 });
  const dec = generateSynthetic({ out: path.join(d, 'dec'), dims, seed: 2, spectrumDecay: 0.5 });
  const sv = (dir: string, name: string): { s: Float64Array; rms: number } => {
    const c = openCheckpoint(dir);
    try {
      const [rows, cols] = c.info(name).shape as [number, number];
      const w = c.readFloat64(name);
      const rms = Math.sqrt(w.reduce((a, x) => a + x * x, 0) / w.length);
      return { s: exactSVD({ rows, cols, data: w }).S, rms };
    } finally { c.close(); }
  };
  for (const name of ['model.layers.0.mlp.up_proj.weight', 'model.layers.0.mlp.down_proj.weight']) { // tall and wide
    const f = sv(flat.dir, name), g = sv(dec.dir, name);
    // i.i.d. 192×64: σ₁/σ₁₆ stays near the Marchenko–Pastur edge ratio (< 1.6); a = 0.5 gives ≈ 4 (16^0.5)
    assert.ok(f.s[0]! / f.s[15]! < 1.6, `flat ${f.s[0]! / f.s[15]!}`);
    const r = g.s[0]! / g.s[15]!;
    assert.ok(r > 2.8 && r < 5.5, `decayed σ₁/σ₁₆ = ${r}`);
    assert.ok(Math.abs(g.rms - 0.02) < 0.002 && Math.abs(f.rms - 0.02) < 0.002, `rms ${g.rms} ${f.rms}`);
  }
  // other tensors are untouched by the option
  const a = openCheckpoint(flat.dir), b = openCheckpoint(dec.dir);
  try {
    for (const n of ['model.embed_tokens.weight', 'model.norm.weight', 'model.layers.0.self_attn.q_proj.bias']) assert.ok(Buffer.from(a.readBytes(n)).equals(Buffer.from(b.readBytes(n))), n);
  } finally { a.close(); b.close(); }
  assert.throws(() => generateSynthetic({ out: path.join(d, 'bad'), dims, spectrumDecay: -1 }), /spectrum-decay/);
  // a set whose base is regenerated with another decay regenerates its tuned models too
  const s1 = ensureSyntheticSet({ dir: path.join(d, 'set'), dims, seed: 1, changedFractions: [0.3] });
  const before = fs.readFileSync(s1.tuned[0]!.files[0]!);
  await new Promise((r) => setTimeout(r, 20));
  const s2 = ensureSyntheticSet({ dir: path.join(d, 'set'), dims, seed: 1, changedFractions: [0.3], spectrumDecay: 0.5 });
  assert.ok(!fs.readFileSync(s2.tuned[0]!.files[0]!).equals(before), 'tuned model rebuilt on the new base');
  const t = openCheckpoint(s2.tuned[0]!.dir), bb = openCheckpoint(s2.base.dir);
  try {
    const x = bb.readFloat64('model.layers.0.mlp.up_proj.weight'), y = t.readFloat64('model.layers.0.mlp.up_proj.weight');
    let diff = 0;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) diff++;
    assert.ok(diff / x.length > 0.2 && diff / x.length < 0.4, `changed fraction ${diff / x.length}`);
  } finally { t.close(); bb.close(); }
});
