/** intervene() on the tiny Qwen2-like / Qwen3-like checkpoints: invariance, copies, sharding, inverse, bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { intervene, parseLayerList } from '../src/interventions/intervene.js';
import { drawRotations, orthogonalityError } from '../src/interventions/rotate.js';
import { inversePermutation } from '../src/interventions/permute.js';
import { FIXTURES, QWEN3_TINY, generateTinyCheckpoint } from './interventions.fixture-gen.js';
import { fixture, tempDir, runCli } from './helpers.js';

const QWEN2 = fixture('interventions', 'qwen2-tiny');
const QWEN3 = fixture('interventions', 'qwen3-tiny');

function folderHash(dir: string): string {
  const h = crypto.createHash('sha256');
  for (const f of fs.readdirSync(dir).sort()) {
    const p = path.join(dir, f);
    if (fs.statSync(p).isFile()) { h.update(f); h.update(fs.readFileSync(p)); }
  }
  return h.digest('hex');
}

function tensorBytes(spec: string): Map<string, Buffer> {
  const src = openCheckpoint(spec);
  try {
    return new Map(src.names.map((n) => [n, Buffer.from(src.readBytes(n))]));
  } finally { src.close(); }
}

function leftovers(parent: string): string[] {
  return fs.readdirSync(parent).filter((f) => f.includes('.tmp-') || f.includes('.old-'));
}

test('committed fixtures equal a fresh seeded generation', () => {
  const dir = tempDir();
  for (const [name, spec] of Object.entries(FIXTURES)) {
    generateTinyCheckpoint(path.join(dir, name), spec);
    assert.equal(folderHash(path.join(dir, name)), folderHash(fixture('interventions', name)), name);
  }
});

test('parseLayerList: indices, ranges, lists, all; errors', () => {
  assert.deepEqual(parseLayerList('25', 28), [25]);
  assert.deepEqual(parseLayerList('20-23', 28), [20, 21, 22, 23]);
  assert.deepEqual(parseLayerList('7-9,3, 5,3', 28), [3, 5, 7, 8, 9]);
  assert.deepEqual(parseLayerList('all', 3), [0, 1, 2]);
  assert.throws(() => parseLayerList('28', 28), /out of range \(the model has layers 0-27\)/);
  assert.throws(() => parseLayerList('5-3', 28), /empty/);
  assert.throws(() => parseLayerList('x', 28), /not a layer index/);
  assert.throws(() => parseLayerList('-1', 28), /not a layer index/);
});

test('Qwen2-like (biases, sharded): rotation within bf16 rounding, permutation exact, all else bit-for-bit', () => {
  const before = folderHash(QWEN2) + folderHash(QWEN2);
  const out = path.join(tempDir(), 'rot');
  const r = intervene({ base: QWEN2, out, rotateLayers: '1,2', permuteLayers: [0, 2], seed: 123 });
  assert.equal(folderHash(QWEN2) + folderHash(QWEN2), before, 'input untouched');
  assert.deepEqual(leftovers(path.dirname(out)), []);
  const byLayer = new Map(r.layers.map((l) => [l.layer, l]));
  // Permutation only: exactly 0.
  assert.equal(byLayer.get(0)!.verification.stored.maxAbsDiff, 0);
  assert.deepEqual(byLayer.get(0)!.permutation, [1, 0]);
  assert.deepEqual(byLayer.get(0)!.queryPermutation, [2, 3, 0, 1]);
  for (const l of [1, 2]) {
    const v = byLayer.get(l)!.verification;
    assert.ok(v.exactArithmetic!.relFrobenius < 1e-13, `fp64 ${v.exactArithmetic!.relFrobenius}`);
    // bf16 storage: within a factor 2 of the a-priori estimate (≈ 2.35e-3), and not exact.
    assert.ok(v.stored.relFrobenius > 0 && v.stored.relFrobenius < 2 * v.estimatedRelFrobenius, `stored ${v.stored.relFrobenius}`);
    assert.equal(v.warning, null);
    assert.ok(byLayer.get(l)!.rotationOrthogonalityError! < 1e-14);
  }
  // Every tensor not listed as changed is bit-identical; the changed ones really changed.
  const a = tensorBytes(QWEN2), b = tensorBytes(out);
  assert.deepEqual([...b.keys()], [...a.keys()]);
  const changed = new Set(r.layers.flatMap((l) => l.tensorsChanged));
  assert.deepEqual([...changed].sort(), [
    'model.layers.0.self_attn.k_proj.bias', 'model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.o_proj.weight',
    'model.layers.0.self_attn.q_proj.bias', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.v_proj.bias',
    'model.layers.0.self_attn.v_proj.weight',
    'model.layers.1.self_attn.o_proj.weight', 'model.layers.1.self_attn.v_proj.bias', 'model.layers.1.self_attn.v_proj.weight',
    'model.layers.2.self_attn.k_proj.bias', 'model.layers.2.self_attn.k_proj.weight', 'model.layers.2.self_attn.o_proj.weight',
    'model.layers.2.self_attn.q_proj.bias', 'model.layers.2.self_attn.q_proj.weight', 'model.layers.2.self_attn.v_proj.bias',
    'model.layers.2.self_attn.v_proj.weight',
  ]);
  for (const [n, bytes] of a) {
    if (changed.has(n)) assert.ok(!bytes.equals(b.get(n)!), `${n} should have changed`);
    else assert.ok(bytes.equals(b.get(n)!), `${n} should be bit-identical`);
  }
  // Same sharding and index; side files copied; input metadata kept plus ours.
  const idxA = JSON.parse(fs.readFileSync(path.join(QWEN2, 'model.safetensors.index.json'), 'utf8'));
  const idxB = JSON.parse(fs.readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8'));
  assert.deepEqual(idxB.weight_map, idxA.weight_map);
  assert.deepEqual(idxB.metadata, idxA.metadata);
  for (const f of ['config.json', 'generation_config.json', 'tokenizer_config.json']) {
    assert.ok(fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(QWEN2, f))), f);
  }
  for (const shard of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
    const fa = SafetensorsFile.inspect(path.join(QWEN2, shard)), fb = SafetensorsFile.inspect(path.join(out, shard));
    assert.deepEqual([...fb.tensors.keys()], [...fa.tensors.keys()], 'same tensor order within the shard');
    assert.equal(fb.metadata.format, 'pt');
    const meta = JSON.parse(fb.metadata['rlvr_lens.intervention']!);
    assert.equal(meta.seed, 123);
    assert.deepEqual(meta.rotate_vo_layers, [1, 2]);
  }
  // The recorded R matrices are the seeded ones, and orthogonal.
  const rot = SafetensorsFile.open(path.join(out, 'rlvr_lens', 'rotations.safetensors'));
  try {
    const raw = rot.readBytes('layers.1.R');
    const all = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const expect = drawRotations('haar', 123, 1, 2, 16);
    assert.deepEqual(Array.from(all.subarray(0, 256)), Array.from(expect[0]!));
    assert.deepEqual(Array.from(all.subarray(256)), Array.from(expect[1]!));
    assert.ok(orthogonalityError(all.subarray(256), 16) < 1e-14);
    assert.deepEqual(rot.tensors.get('layers.0.perm')!.shape, [2]);
  } finally { rot.close(); }
  const record = JSON.parse(fs.readFileSync(path.join(out, 'rlvr_lens', 'intervention.json'), 'utf8'));
  assert.equal(record.kind, 'intervention');
  assert.equal(record.layers.length, 3);
});

test('same inputs and seed → byte-identical output folders', () => {
  const dir = tempDir();
  const x = path.join(dir, 'x'), y = path.join(dir, 'y');
  intervene({ base: QWEN3, out: x, rotateLayers: '0', permuteLayers: '1', seed: 5 });
  intervene({ base: QWEN3, out: y, rotateLayers: '0', permuteLayers: '1', seed: 5 });
  assert.equal(folderHash(x), folderHash(y));
  assert.equal(folderHash(path.join(x, 'rlvr_lens')), folderHash(path.join(y, 'rlvr_lens')));
});

test('Qwen3-like (q_norm/k_norm, 8q/2kv, head_dim·heads ≠ hidden): hadamard + permutation', () => {
  const out = path.join(tempDir(), 'q3');
  const r = intervene({ base: QWEN3, out, rotateLayers: 'all', permuteLayers: 'all', seed: 9, rotation: 'hadamard' });
  for (const l of r.layers) {
    assert.deepEqual(l.permutation, [1, 0]);
    assert.deepEqual(l.queryPermutation, [4, 5, 6, 7, 0, 1, 2, 3]);
    assert.ok(l.verification.exactArithmetic!.relFrobenius < 1e-13);
    assert.ok(l.verification.stored.relFrobenius < 2 * l.verification.estimatedRelFrobenius);
    assert.ok(!l.tensorsChanged.some((n) => /norm/.test(n)), 'q_norm/k_norm are shared and unchanged');
  }
  const a = tensorBytes(QWEN3), b = tensorBytes(out);
  assert.ok(a.get('model.layers.0.self_attn.q_norm.weight')!.equals(b.get('model.layers.0.self_attn.q_norm.weight')!));
  assert.ok(fs.existsSync(path.join(out, 'model.safetensors')) && !fs.existsSync(path.join(out, 'model.safetensors.index.json')));
  // Permutation-only run on Qwen3: exact.
  const p = intervene({ base: QWEN3, out: path.join(tempDir(), 'q3p'), permuteLayers: '0-1', seed: 1 });
  for (const l of p.layers) assert.equal(l.verification.stored.maxAbsDiff, 0);
});

test('applying the inverse permutation restores the input bit for bit', () => {
  const dir = tempDir();
  const fwd = intervene({ base: QWEN2, out: path.join(dir, 'fwd'), permuteLayers: 'all', seed: 77 });
  const inv = Object.fromEntries(fwd.layers.map((l) => [l.layer, inversePermutation(l.permutation!)]));
  intervene({ base: path.join(dir, 'fwd'), out: path.join(dir, 'back'), permutations: inv, seed: 0 });
  const a = tensorBytes(QWEN2), c = tensorBytes(path.join(dir, 'back'));
  for (const [n, bytes] of a) assert.ok(bytes.equals(c.get(n)!), n);
  // and the forward one did move things
  const b = tensorBytes(path.join(dir, 'fwd'));
  assert.ok(!a.get('model.layers.1.self_attn.k_proj.weight')!.equals(b.get('model.layers.1.self_attn.k_proj.weight')!));
});

test('Llama-like F32 checkpoint with 4 kv heads: rotation error at fp32 rounding', () => {
  const dir = tempDir();
  const base = path.join(dir, 'llama');
  generateTinyCheckpoint(base, { family: 'llama', layers: 2, hidden: 32, heads: 8, kvHeads: 4, headDim: 8, intermediate: 40, vocab: 16, seed: 3, dtype: 'F32' });
  const r = intervene({ base, out: path.join(dir, 'o'), rotateLayers: '1', permuteLayers: '1', seed: 4 });
  const v = r.layers[0]!.verification;
  assert.ok(v.stored.relFrobenius < 1e-6 && v.stored.relFrobenius > 0, `${v.stored.relFrobenius}`);
  assert.equal(r.layers[0]!.permutation!.length, 4);
  assert.ok(r.layers[0]!.permutation!.every((x, i) => x !== i), 'a derangement');
});

test('bad input: clear errors, nothing written', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'o');
  assert.throws(() => intervene({ base: QWEN2, out, rotateLayers: '3', seed: 1 }), /layer 3 is out of range \(the model has layers 0-2\)/);
  assert.throws(() => intervene({ base: QWEN2, out, rotateLayers: [7], seed: 1 }), /out of range/);
  assert.throws(() => intervene({ base: QWEN2, out, seed: 1 }), /nothing to do/);
  assert.throws(() => intervene({ base: QWEN2, out, permutations: { 0: [0, 0] }, seed: 1 }), /not a permutation/);
  // output = input folder
  assert.throws(() => intervene({ base: QWEN2, out: QWEN2, rotateLayers: '0', seed: 1, force: true }), /input checkpoint's folder/);
  // hadamard with head_dim 12
  const odd = path.join(dir, 'odd');
  generateTinyCheckpoint(odd, { family: 'llama', layers: 1, hidden: 24, heads: 2, kvHeads: 1, headDim: 12, intermediate: 8, vocab: 8, seed: 1 });
  assert.throws(() => intervene({ base: odd, out, rotateLayers: '0', rotation: 'hadamard', seed: 1 }), /power of 2/);
  // MQA: one kv head, nothing to permute
  assert.throws(() => intervene({ base: odd, out, permuteLayers: '0', seed: 1 }), /1 kv head/);
  // config heads inconsistent with the tensor shapes
  const bad = path.join(dir, 'bad');
  generateTinyCheckpoint(bad, QWEN3_TINY);
  const cfg = JSON.parse(fs.readFileSync(path.join(bad, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ ...cfg, num_attention_heads: 4 }));
  assert.throws(() => intervene({ base: bad, out, rotateLayers: '0', seed: 1 }), /has shape \[128, 64\], expected \[64, 64\]/);
  fs.writeFileSync(path.join(bad, 'config.json'), JSON.stringify({ ...cfg, num_attention_heads: 7 }));
  assert.throws(() => intervene({ base: bad, out, rotateLayers: '0', seed: 1 }), /not a multiple/);
  // an attention of an unknown form (fused qkv) → refused
  const fused = path.join(dir, 'fused');
  fs.mkdirSync(fused);
  fs.copyFileSync(path.join(QWEN3, 'config.json'), path.join(fused, 'config.json'));
  const src = SafetensorsFile.open(path.join(QWEN3, 'model.safetensors'));
  const { writeSafetensors } = await import('../src/io/writer.js');
  writeSafetensors(path.join(fused, 'model.safetensors'), [...src.tensors.values()].map((t) => ({
    name: t.name.replace('self_attn.q_proj', 'self_attn.qkv_proj'), dtype: t.dtype, shape: t.shape, data: src.readBytes(t.name),
  })));
  src.close();
  assert.throws(() => intervene({ base: fused, out, rotateLayers: '0', seed: 1 }), /no self_attn\.q_proj.*known form.*qkv_proj/);
  // existing output folder without --force: refused and left as it was
  fs.mkdirSync(out);
  fs.writeFileSync(path.join(out, 'keep.txt'), 'mine');
  assert.throws(() => intervene({ base: QWEN2, out, rotateLayers: '0', seed: 1 }), /already exists \(use --force/);
  assert.deepEqual(fs.readdirSync(out), ['keep.txt']);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['bad', 'fused', 'o', 'odd']);
  // with --force it is replaced
  intervene({ base: QWEN2, out, rotateLayers: '0', seed: 1, force: true });
  assert.ok(!fs.existsSync(path.join(out, 'keep.txt')) && fs.existsSync(path.join(out, 'model.safetensors.index.json')));
  assert.deepEqual(leftovers(dir), []);
});

test('CLI: intervene prints the verification table; errors are one line, exit 2', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'cli');
  const r1 = await runCli(['intervene', '--base', QWEN2, '--rotate-vo', '1', '--permute-heads', '2', '--seed', '3', '--out', out, '--quiet']);
  const r2 = await runCli(['intervene', '--base', QWEN2, '--rotate-vo', '9', '--seed', '3', '--out', path.join(dir, 'x')]);
  const code = r1.code, code2 = r2.code;
  const writes = [r1.out, r2.out];
  assert.equal(code, 0);
  assert.match(writes.join(''), /rotate V\/O \(haar\)/);
  assert.match(writes.join(''), /permute kv \[1,0\]/);
  assert.equal(code2, 2);
  assert.match(writes.join(''), /rlvr-lens: --rotate-vo: layer 9 is out of range/);
  assert.ok(!fs.existsSync(path.join(dir, 'x')));
});
