/** Hand-checked cases for the rotation / permutation kernels and the attention forward pass. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  drawRotations, hadamardOrthogonal, haarOrthogonal, layerSeed, orthogonalityError, orthonormalize, rotateVO, ROTATION_TAG,
} from '../src/interventions/rotate.js';
import {
  drawPermutation, expandToQueryHeads, inversePermutation, isPermutation, permuteColumnBlocks, permuteRowBlocks, randomDerangement,
} from '../src/interventions/permute.js';
import {
  type AttentionGeometry, type AttentionWeights, attentionForward, compareOutputs, randomAttentionInput, roundingErrorEstimate,
} from '../src/interventions/verify.js';
import { Rng } from '../src/util/random.js';

test('hadamard 4×4 is the normalized Sylvester matrix', () => {
  const h = Array.from(hadamardOrthogonal(4)).map((x) => Math.round(x * 2));
  assert.deepEqual(h, [1, 1, 1, 1, 1, -1, 1, -1, 1, 1, -1, -1, 1, -1, -1, 1]);
  assert.ok(orthogonalityError(hadamardOrthogonal(64), 64) < 1e-14);
  assert.throws(() => hadamardOrthogonal(12), /power of 2/);
});

test('orthonormalize: Q·R = A with R upper triangular, positive diagonal (hand case)', () => {
  // A = [[3, 1], [4, 2]] (row-major): first column (3,4)/5, R11 = 5.
  const q = orthonormalize(Float64Array.from([3, 1, 4, 2]), 2);
  assert.ok(Math.abs(q[0]! - 0.6) < 1e-15 && Math.abs(q[2]! - 0.8) < 1e-15);
  // second column: (1,2) − 2.2·(0.6,0.8) = (−0.32, 0.24), normalized (−0.8, 0.6)
  assert.ok(Math.abs(q[1]! + 0.8) < 1e-15 && Math.abs(q[3]! - 0.6) < 1e-15);
  // R = Qᵀ A must be upper triangular with positive diagonal (the Haar sign fix).
  const rng = new Rng(5);
  const d = 24;
  const a = new Float64Array(d * d);
  rng.fillNormal(a);
  const qq = orthonormalize(a, d);
  assert.ok(orthogonalityError(qq, d) < 1e-14);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let r = 0;
      for (let k = 0; k < d; k++) r += qq[k * d + i]! * a[k * d + j]!;
      if (i === j) assert.ok(r > 0, `R[${i}][${i}] = ${r}`);
      else assert.ok(Math.abs(r) < 1e-12, `R[${i}][${j}] = ${r} below the diagonal`);
    }
  }
});

test('Haar rotations: orthogonal, seeded, per-layer streams, det ±1 both occur', () => {
  const a = drawRotations('haar', 42, 3, 2, 16);
  const b = drawRotations('haar', 42, 3, 2, 16);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a[0], a[1]);
  assert.notDeepEqual(drawRotations('haar', 42, 4, 2, 16)[0], a[0]);
  for (const r of a) assert.ok(orthogonalityError(r, 16) < 1e-14);
  // The stream is documented: Rng(layerSeed(seed, layer, ROTATION_TAG)), normals row-major, then QR.
  assert.deepEqual(a[0], haarOrthogonal(16, new Rng(layerSeed(42, 3, ROTATION_TAG))));
  const shared = drawRotations('haar', 42, 3, 3, 16, true);
  assert.equal(shared[0], shared[2]);
  // Haar over O(D) (not SO(D)): both determinant signs appear. det sign via 2×2 draws.
  const signs = new Set<number>();
  for (let s = 0; s < 40; s++) {
    const r = drawRotations('haar', s, 0, 1, 2)[0]!;
    signs.add(Math.sign(r[0]! * r[3]! - r[1]! * r[2]!));
  }
  assert.deepEqual([...signs].sort(), [-1, 1]);
});

test('rotateVO hand case: D=2, one kv head, two q heads, 90° rotation', () => {
  // v_proj [2, 3], bias [2]; o_proj [3, 4] (2 q heads × D=2); R = [[0, −1], [1, 0]].
  const v = Float64Array.from([1, 2, 3, 4, 5, 6]);
  const b = Float64Array.from([7, 8]);
  const o = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  const r = Float64Array.from([0, -1, 1, 0]);
  const res = rotateVO(v, b, o, [r], { hiddenSize: 3, numHeads: 2, numKvHeads: 1, headDim: 2 });
  // Rᵀ = [[0, 1], [−1, 0]]: new rows = (row1, −row0).
  assert.deepEqual(Array.from(res.v), [4, 5, 6, -1, -2, -3]);
  assert.deepEqual(Array.from(res.vBias!), [8, -7]);
  // O_h R: columns (c0, c1) → (c1, −c0) per head.
  assert.deepEqual(Array.from(res.o), [2, -1, 4, -3, 6, -5, 8, -7, 10, -9, 12, -11]);
  assert.deepEqual(Array.from(v), [1, 2, 3, 4, 5, 6], 'input untouched');
});

test('permutation helpers: hand case, inverse, query expansion, derangement', () => {
  const bytes = Uint8Array.from([0, 1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(permuteRowBlocks(bytes, [2, 0, 1], 2)), [2, 3, 4, 5, 0, 1]);
  // 2 rows of 3 blocks of 1 byte: block h → perm[h]
  assert.deepEqual(Array.from(permuteColumnBlocks(bytes, [2, 0, 1], 2, 1)), [1, 2, 0, 4, 5, 3]);
  assert.deepEqual(expandToQueryHeads([1, 0], 3), [3, 4, 5, 0, 1, 2]);
  assert.deepEqual(inversePermutation([2, 0, 1]), [1, 2, 0]);
  const back = permuteRowBlocks(permuteRowBlocks(bytes, [2, 0, 1], 2), inversePermutation([2, 0, 1]), 2);
  assert.deepEqual(back, bytes);
  assert.ok(isPermutation([1, 0, 2], 3) && !isPermutation([1, 1, 2], 3) && !isPermutation([0, 1], 3));
  const rng = new Rng(1);
  for (let i = 0; i < 50; i++) {
    const p = randomDerangement(5, rng);
    assert.ok(isPermutation(p, 5) && p.every((x, j) => x !== j));
  }
  assert.deepEqual(drawPermutation(9, 2, 2), [1, 0]);
  assert.deepEqual(drawPermutation(9, 2, 8), drawPermutation(9, 2, 8));
});

function randomWeights(geo: AttentionGeometry, rng: Rng, opts: { bias: boolean; norms: boolean }): AttentionWeights {
  const { hiddenSize: h, numHeads: hq, numKvHeads: hkv, headDim: d } = geo;
  const g = (n: number, std: number, mean = 0): Float64Array => { const a = new Float64Array(n); rng.fillNormal(a, std); for (let i = 0; i < n; i++) a[i]! += mean; return a; };
  return {
    q: g(hq * d * h, 0.3), k: g(hkv * d * h, 0.3), v: g(hkv * d * h, 0.3), o: g(h * hq * d, 0.3),
    qBias: opts.bias ? g(hq * d, 0.3) : null, kBias: opts.bias ? g(hkv * d, 0.3) : null, vBias: opts.bias ? g(hkv * d, 0.3) : null, oBias: null,
    qNorm: opts.norms ? g(d, 0.2, 1) : null, kNorm: opts.norms ? g(d, 0.2, 1) : null, inputNorm: g(h, 0.1, 1),
  };
}

test('attentionForward: single token equals o_proj · v (softmax over one position is 1)', () => {
  const geo: AttentionGeometry = { hiddenSize: 4, numHeads: 2, numKvHeads: 1, headDim: 2, rmsNormEps: 0, ropeTheta: 10000 };
  const w = randomWeights(geo, new Rng(3), { bias: true, norms: false });
  w.inputNorm = null;
  const x = Float64Array.from([1, -1, 1, -1]); // RMS 1 → normalized x is x
  const out = attentionForward(w, geo, x, [0]);
  const v = [0, 1].map((r) => w.v[r * 4]! - w.v[r * 4 + 1]! + w.v[r * 4 + 2]! - w.v[r * 4 + 3]! + w.vBias![r]!);
  for (let r = 0; r < 4; r++) {
    const expect = w.o[r * 4]! * v[0]! + w.o[r * 4 + 1]! * v[1]! + w.o[r * 4 + 2]! * v[0]! + w.o[r * 4 + 3]! * v[1]!;
    assert.ok(Math.abs(out[r]! - expect) < 1e-12, `${out[r]} vs ${expect}`);
  }
});

test('attentionForward: invariant under exact V/O rotation, sensitive to a half-done one', () => {
  for (const opts of [{ bias: true, norms: false }, { bias: false, norms: true }]) {
    const geo: AttentionGeometry = { hiddenSize: 24, numHeads: 6, numKvHeads: 2, headDim: 8, rmsNormEps: 1e-6, ropeTheta: 10000 };
    const w = randomWeights(geo, new Rng(7), opts);
    const rs = drawRotations('haar', 1, 0, 2, 8);
    const rot = rotateVO(w.v, w.vBias, w.o, rs, geo);
    const { x, positions } = randomAttentionInput(24, 9, 4);
    const ref = attentionForward(w, geo, x, positions);
    const same = compareOutputs(ref, attentionForward({ ...w, v: rot.v, vBias: rot.vBias, o: rot.o }, geo, x, positions));
    assert.ok(same.relFrobenius < 1e-13, `rotation changed output by ${same.relFrobenius}`);
    const broken = compareOutputs(ref, attentionForward({ ...w, v: rot.v, vBias: rot.vBias }, geo, x, positions));
    assert.ok(broken.relFrobenius > 0.1, 'rotating V without O must change the output');
  }
});

test('attentionForward: permuting q, k, v, o together is exact; permuting only k/v is not', () => {
  const geo: AttentionGeometry = { hiddenSize: 16, numHeads: 4, numKvHeads: 2, headDim: 4, rmsNormEps: 1e-6, ropeTheta: 1e4 };
  const w = randomWeights(geo, new Rng(8), { bias: true, norms: true });
  const perm = [1, 0], qp = expandToQueryHeads(perm, 2);
  const rows = (a: Float64Array, p: number[], block: number): Float64Array => {
    const o = new Float64Array(a.length);
    p.forEach((to, from) => o.set(a.subarray(from * block, (from + 1) * block), to * block));
    return o;
  };
  const cols = (a: Float64Array, p: number[]): Float64Array => {
    const o = new Float64Array(a.length);
    for (let r = 0; r < 16; r++) p.forEach((to, from) => o.set(a.subarray(r * 16 + from * 4, r * 16 + from * 4 + 4), r * 16 + to * 4));
    return o;
  };
  const full: AttentionWeights = {
    ...w, q: rows(w.q, qp, 64), qBias: rows(w.qBias!, qp, 4), k: rows(w.k, perm, 64), kBias: rows(w.kBias!, perm, 4),
    v: rows(w.v, perm, 64), vBias: rows(w.vBias!, perm, 4), o: cols(w.o, qp),
  };
  const { x, positions } = randomAttentionInput(16, 7, 2);
  const ref = attentionForward(w, geo, x, positions);
  assert.equal(compareOutputs(ref, attentionForward(full, geo, x, positions)).maxAbsDiff, 0);
  const half = { ...w, k: full.k, kBias: full.kBias, v: full.v, vBias: full.vBias };
  assert.ok(compareOutputs(ref, attentionForward(half, geo, x, positions)).relFrobenius > 0.01);
});

test('rounding estimate: bf16 ≈ 2.35e-3, f16 8 times smaller, f32 ≈ 3.6e-8', () => {
  assert.ok(Math.abs(roundingErrorEstimate(8) - 2.346e-3) < 1e-6);
  assert.ok(Math.abs(roundingErrorEstimate(11) * 8 - roundingErrorEstimate(8)) < 1e-15);
  assert.ok(roundingErrorEstimate(24) < 3.7e-8 && roundingErrorEstimate(24) > 3.5e-8);
});

test('property: rotation + permutation invariance across head layouts (MHA, GQA, MQA), exact arithmetic', () => {
  const layouts = [
    { hiddenSize: 16, numHeads: 4, numKvHeads: 4, headDim: 4 }, // MHA, n_rep 1
    { hiddenSize: 24, numHeads: 6, numKvHeads: 3, headDim: 8 }, // GQA, n_rep 2
    { hiddenSize: 12, numHeads: 4, numKvHeads: 1, headDim: 6 }, // MQA (rotation only), head_dim not a power of 2
  ];
  for (const [li, lay] of layouts.entries()) {
    const geo: AttentionGeometry = { ...lay, rmsNormEps: 1e-6, ropeTheta: 1e6 };
    for (let seed = 0; seed < 3; seed++) {
      const w = randomWeights(geo, new Rng(100 * li + seed), { bias: seed !== 1, norms: seed === 1 });
      const rot = rotateVO(w.v, w.vBias, w.o, drawRotations('haar', seed, li, lay.numKvHeads, lay.headDim), geo);
      const { x, positions } = randomAttentionInput(lay.hiddenSize, 5, seed);
      const d = compareOutputs(attentionForward(w, geo, x, positions), attentionForward({ ...w, v: rot.v, vBias: rot.vBias, o: rot.o }, geo, x, positions));
      assert.ok(d.relFrobenius < 1e-13, `layout ${li} seed ${seed}: ${d.relFrobenius}`);
    }
  }
});
