/** Sparse-RL masks: densities, safe = M_low ∪ ¬M_princ entry by entry, random-like-safe counts, file format, bad input. */
import { test } from 'node:test';
import { DEFAULT_SOLVER, baseDecompositionKey } from '../src/run/geometry.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type MaskScorers, buildMasks, combineMasks, randomMaskWithCount } from '../src/export/masks.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { exactSVD, reconstruct } from '../src/linalg/index.js';
import { isLinearWeight, parseTensorName } from '../src/model/names.js';
import { BitMask } from '../src/probes/mask.js';
import { Rng } from '../src/util/random.js';
import { fixture, tempDir, runCli } from './helpers.js';

const QWEN2 = fixture('interventions', 'qwen2-tiny');

/** Test oracle: the SPEC §4 definitions computed the slow, obvious way (exact SVD, full sort). */
function topFraction(score: ArrayLike<number>, alpha: number, largest: boolean, shape: number[]): BitMask {
  const n = score.length;
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => (largest ? score[b]! - score[a]! : score[a]! - score[b]!) || a - b);
  const m = new BitMask(shape);
  for (let i = 0; i < Math.floor(alpha * n); i++) m.set(idx[i]!);
  return m;
}
const ORACLE: MaskScorers = {
  principal(_n, w, rows, cols, alpha, k) {
    const f = exactSVD({ rows, cols, data: Float64Array.from(w) });
    const rec = reconstruct(f.U, f.S, f.V, k).data;
    return topFraction(rec.map(Math.abs), alpha, true, [rows, cols]);
  },
  low(_n, w, rows, cols, alpha) {
    return topFraction(Array.from(w, Math.abs), alpha, false, [rows, cols]);
  },
};

function readMasks(file: string): Map<string, BitMask> {
  const f = SafetensorsFile.open(file);
  try {
    return new Map([...f.tensors.values()].map((t) => {
      assert.equal(t.dtype, 'BOOL');
      const b = f.readBytes(t.name);
      assert.ok(b.every((x) => x === 0 || x === 1), 'BOOL bytes are 0/1');
      return [t.name, BitMask.fromBytes(t.shape, b)];
    }));
  } finally { f.close(); }
}

test('randomMaskWithCount: exact count, seeded, covers positions evenly', () => {
  for (const count of [0, 1, 37, 50, 63, 100]) {
    const m = randomMaskWithCount([10, 10], count, new Rng(count));
    assert.equal(m.count(), count);
  }
  assert.ok(randomMaskWithCount([7, 9], 40, new Rng(1)).equals(randomMaskWithCount([7, 9], 40, new Rng(1))));
  assert.ok(!randomMaskWithCount([7, 9], 40, new Rng(1)).equals(randomMaskWithCount([7, 9], 40, new Rng(2))));
  // Every position is chosen with probability count/n: 2000 draws of 3 of 10 → each ≈ 600.
  const hits = new Array<number>(10).fill(0);
  const rng = new Rng(3);
  for (let t = 0; t < 2000; t++) { const m = randomMaskWithCount([10], 3, rng); for (let i = 0; i < 10; i++) if (m.get(i)) hits[i]!++; }
  assert.ok(hits.every((h) => h > 480 && h < 720), `${hits}`);
  assert.throws(() => randomMaskWithCount([3], 4, rng), RangeError);
});

test('combineMasks hand case', () => {
  const princ = BitMask.fromBytes([2, 3], Uint8Array.from([1, 1, 0, 1, 0, 0]));
  const low = BitMask.fromBytes([2, 3], Uint8Array.from([0, 1, 1, 0, 0, 1]));
  assert.deepEqual(Array.from(combineMasks('princ', princ, low).toBytes()), [1, 1, 0, 1, 0, 0]);
  assert.deepEqual(Array.from(combineMasks('nonprinc', princ, low).toBytes()), [0, 0, 1, 0, 1, 1]);
  assert.deepEqual(Array.from(combineMasks('low', princ, low).toBytes()), [0, 1, 1, 0, 0, 1]);
  assert.deepEqual(Array.from(combineMasks('safe', princ, low).toBytes()), [0, 1, 1, 0, 1, 1]);
  assert.equal(combineMasks('random-like-safe', princ, low, new Rng(0)).count(), 4);
});

test('buildMasks on the Qwen2-like fixture: every linear weight, stated densities, safe = M_low ∪ ¬M_princ entry by entry', async () => {
  const dir = tempDir();
  const files: Record<string, Map<string, BitMask>> = {};
  const results: Record<string, Awaited<ReturnType<typeof buildMasks>>> = {};
  for (const kind of ['princ', 'nonprinc', 'low', 'safe', 'random-like-safe'] as const) {
    const out = path.join(dir, `${kind}.safetensors`);
    results[kind] = await buildMasks({ base: QWEN2, out, kind, alpha: 0.5, rank: 8, seed: 4, scorers: ORACLE });
    files[kind] = readMasks(out);
  }
  const src = openCheckpoint(QWEN2);
  const linear = src.names.filter((n) => isLinearWeight(parseTensorName(n), src.info(n).shape));
  assert.equal(linear.length, 21);
  for (const name of linear) {
    const n = src.info(name).numel;
    const [rows, cols] = src.info(name).shape as [number, number];
    const w = src.readFloat32(name);
    const P = files.princ!.get(name)!, L = files.low!.get(name)!;
    assert.deepEqual(P.shape, [rows, cols]);
    assert.equal(P.count(), Math.floor(0.5 * n));
    assert.equal(L.count(), Math.floor(0.5 * n));
    assert.ok(P.equals(await ORACLE.principal(name, w, rows, cols, 0.5, 8)));
    assert.ok(L.equals(await ORACLE.low(name, w, rows, cols, 0.5)));
    assert.ok(files.nonprinc!.get(name)!.equals(P.not()));
    const safe = files.safe!.get(name)!;
    for (let i = 0; i < n; i++) assert.equal(safe.get(i), L.get(i) || !P.get(i));
    const rnd = files['random-like-safe']!.get(name)!;
    assert.equal(rnd.count(), safe.count(), 'same per-tensor density as safe');
    assert.ok(!rnd.equals(safe));
  }
  src.close();
  // Fractions: princ exactly half of each matrix; safe ≈ 0.5 + 0.5·P(princ ∧ ¬low) — between 0.5 and 1.
  assert.ok(Math.abs(results.princ!.fraction - 0.5) < 1e-12);
  assert.ok(results.safe!.fraction > 0.5 && results.safe!.fraction < 1);
  assert.equal(results['random-like-safe']!.trainable, results.safe!.trainable);
  assert.equal(results.safe!.tensors.length, 21);
  assert.ok(results.safe!.fractionOfModel > results.safe!.fraction, 'unmasked tensors count as trainable');
  // The random mask is seeded: same seed → same file bytes.
  const again = path.join(dir, 'again.safetensors');
  await buildMasks({ base: QWEN2, out: again, kind: 'random-like-safe', alpha: 0.5, rank: 8, seed: 4, scorers: ORACLE });
  assert.ok(fs.readFileSync(again).equals(fs.readFileSync(path.join(dir, 'random-like-safe.safetensors'))));
  const meta = SafetensorsFile.inspect(again).metadata;
  assert.equal(meta.format, 'pt');
  // masks are parked in a spill file while built (bounded memory); nothing is left behind
  assert.deepEqual(fs.readdirSync(dir).sort(), ['again.safetensors', 'low.safetensors', 'nonprinc.safetensors', 'princ.safetensors', 'random-like-safe.safetensors', 'safe.safetensors']);
  assert.equal(JSON.parse(meta['rlvr_lens.masks']!).meaning, '1 = trainable');
});

test('hand case: 2×2 weight, α = 0.5: M_low with the flat-index tie-break, M_princ with k capped at 2', async () => {
  // W = [[4, 2], [2, 1.5]] (two equal entries 2 test the tie-break).
  const dir = tempDir();
  const { writeCheckpointFiles } = await import('../src/io/writer.js');
  fs.writeFileSync(path.join(dir, 'config.json'), '{"num_hidden_layers": 1}');
  writeCheckpointFiles(dir, [{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F32', shape: [2, 2], data: new Uint8Array(Float32Array.from([4, 2, 2, 1.5]).buffer) }], {});
  const out = path.join(dir, 'low.safetensors');
  const r = await buildMasks({ base: dir, out, kind: 'low', alpha: 0.5, scorers: ORACLE });
  // Bottom 2 of |W| = {1.5 (idx 3), 2 (idx 1, tie with idx 2 broken by flat index)}.
  assert.deepEqual(Array.from(readMasks(out).get('model.layers.0.mlp.up_proj.weight')!.toBytes()), [0, 1, 0, 1]);
  assert.equal(r.tensors[0]!.k, null);
  const p = await buildMasks({ base: dir, out: path.join(dir, 'p.safetensors'), kind: 'princ', alpha: 0.5, rank: 64, scorers: ORACLE });
  assert.equal(p.tensors[0]!.k, 2, 'k capped at the matrix rank');
  // k = 2 reconstructs W itself: top 2 of |W| = 4 (idx 0) and 2 (idx 1 by tie-break).
  assert.deepEqual(Array.from(readMasks(path.join(dir, 'p.safetensors')).get('model.layers.0.mlp.up_proj.weight')!.toBytes()), [1, 1, 0, 0]);
});

test('bad input: clear errors, nothing written', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'm.safetensors');
  await assert.rejects(buildMasks({ base: QWEN2, out, kind: 'principal' as 'princ', scorers: ORACLE }), /--kind must be one of/);
  await assert.rejects(buildMasks({ base: QWEN2, out, kind: 'safe', alpha: 1.5, scorers: ORACLE }), /--alpha/);
  await assert.rejects(buildMasks({ base: QWEN2, out, kind: 'safe', rank: 0, scorers: ORACLE }), /--rank/);
  await assert.rejects(buildMasks({ base: QWEN2, out, kind: 'safe', layers: '5', scorers: ORACLE }), /out of range/);
  await assert.rejects(buildMasks({ base: QWEN2, out: path.join(dir, 'no', 'm.safetensors'), kind: 'safe', scorers: ORACLE }), /parent folder does not exist/);
  await assert.rejects(buildMasks({ base: path.join(dir, 'missing'), out, kind: 'safe', scorers: ORACLE }), /no such file/);
  fs.writeFileSync(out, 'keep');
  await assert.rejects(buildMasks({ base: QWEN2, out, kind: 'safe', scorers: ORACLE }), /already exists/);
  assert.equal(fs.readFileSync(out, 'utf8'), 'keep');
  assert.deepEqual(fs.readdirSync(dir), ['m.safetensors']);
});

test('default scorers (src/probes/principal.ts): M_low exact, M_princ = exact-SVD oracle up to near-ties; cached factors are used', async () => {
  const { defaultMaskScorers } = await import('../src/export/masks.js');
  const { DecompositionCache, sha256 } = await import('../src/run/cache.js');
  const { linalgBackend } = await import('../src/linalg/index.js');
  const dir = tempDir();
  const out = path.join(dir, 'princ.safetensors');
  const r = await buildMasks({ base: QWEN2, out, kind: 'princ', alpha: 0.5, rank: 8, cacheDir: null });
  const got = readMasks(out);
  const src = openCheckpoint(QWEN2);
  let differ = 0, total = 0;
  for (const t of r.tensors) {
    const w = src.readFloat32(t.name);
    const [rows, cols] = t.shape;
    const oracle = await ORACLE.principal(t.name, w, rows, cols, 0.5, 8);
    const g = got.get(t.name)!;
    assert.equal(g.count(), oracle.count());
    differ += g.andNotCount(oracle) * 2;
    total += g.length;
    const low = await defaultMaskScorers({ cacheDir: null }).low(t.name, w, rows, cols, 0.5);
    assert.ok(low.equals(await ORACLE.low(t.name, w, rows, cols, 0.5)), `M_low of ${t.name}`);
  }
  assert.ok(differ / total < 0.01, `${differ} of ${total} entries differ from the exact-SVD oracle`);
  // A cache entry under the geometry run's key is read: plant factors of a different matrix
  // (rank-1 e1·e1ᵀ scores only entry (0,0) high) and the mask must follow them.
  const name = 'model.layers.0.self_attn.q_proj.weight';
  const [rows, cols] = src.info(name).shape as [number, number];
  const cache = new DecompositionCache(path.join(dir, 'cache'));
  const U = { rows, cols: 1, data: new Float64Array(rows) }, V = { rows: cols, cols: 1, data: new Float64Array(cols) };
  U.data[0] = 1; V.data[0] = 1;
  cache.put(baseDecompositionKey(name, src.readBytes(name), 'BF16', [rows, cols], 1, false, { ...DEFAULT_SOLVER, backend: await linalgBackend(), threads: 1 }), { U, S: Float64Array.of(5), V, basis: null, sigmaNext: null, info: { iterations: 0, residual: 0, angleErrorBound: 0, converged: true, method: 'planted' } });
  const sc = defaultMaskScorers({ cacheDir: path.join(dir, 'cache') });
  const planted = await sc.principal(name, src.readFloat32(name), rows, cols, 1 / (rows * cols), 1, { dtype: 'BF16', bytes: src.readBytes(name) });
  assert.deepEqual([planted.count(), planted.get(0)], [1, true]);
  assert.equal(cache.stats.writes, 1);
  src.close();
});

test('CLI: masks prints per-module fractions; bad kind is one line, exit 2', async () => {
  const dir = tempDir();
  const r1 = await runCli(['masks', '--base', QWEN2, '--kind', 'low', '--layers', '1', '--modules', 'q,v', '--out', path.join(dir, 'm.safetensors'), '--quiet']);
  const r2 = await runCli(['masks', '--base', QWEN2, '--kind', 'lowest', '--out', path.join(dir, 'x.safetensors')]);
  const c1 = r1.code, c2 = r2.code;
  const writes = [r1.out, r2.out];
  assert.equal(c1, 0);
  const text = writes.join('');
  assert.match(text, /low mask, α=0\.5/);
  assert.match(text, /all linear +3072 +6144 +0\.5/);
  assert.deepEqual([...readMasks(path.join(dir, 'm.safetensors')).keys()], ['model.layers.1.self_attn.q_proj.weight', 'model.layers.1.self_attn.v_proj.weight']);
  assert.equal(c2, 2);
  assert.match(text, /rlvr-lens: --kind must be one of princ, nonprinc, low, safe, random-like-safe/);
  assert.ok(!fs.existsSync(path.join(dir, 'x.safetensors')));
});
