/**
 * The accuracy contract of SPEC §3 for the randomized top-k SVD, on constructed matrices with
 * clustered and decaying spectra and on near-identical pairs W, W + εE (exact answers from the
 * fp64 Jacobi SVD of the same fp32 matrices): top-k σ within 1e-4 relative, principal angles
 * within max(0.1°, 10% of exact), W vs itself 0°, rank-k reconstructions within 1e-4 relative
 * Frobenius; warm start beats cold; a known rotation gives the known angles; ‖ΔW‖₂.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Mat, type Mat64, differenceOperator, exactSVD, frobeniusNorm, mat64, principalAngles, qrThin,
  randn, randn64, reconstruct, sliceCols, spectralNorm, subtract, toMat32, toMat64, topKSVD,
} from '../src/linalg/index.js';
import { Rng } from '../src/util/random.js';

const M = 160, N = 96, K = 12;
// These sizes would take the Gram path under method 'auto'; the contract is on the randomized
// subspace iteration, so it is forced (the Gram path is tested alongside where cheap).
const RAND = { method: 'randomized' } as const;

function orthonormal(n: number, k: number, rng: Rng): Mat64 { return qrThin(randn64(n, k, rng)).Q; }

/** fp32 U diag(σ) Vᵀ (full rank min(m, n)). */
function withSpectrum(sigma: number[], rng: Rng, m = M, n = N): Mat {
  const U = orthonormal(m, sigma.length, rng), V = orthonormal(n, sigma.length, rng);
  return toMat32(reconstruct(U, sigma, V));
}

const SPECTRA: Record<string, number[]> = {
  // geometric decay
  decaying: Array.from({ length: N }, (_, i) => 0.93 ** i),
  // clusters inside the top-k (relative spacing 1e-4 and 1e-3), a cluster straddling k (σ_k − σ_{k+1}
  // = 2% of σ_k), then a slowly decaying tail
  clustered: Array.from({ length: N }, (_, i) =>
    i < 4 ? 10 * (1 - 1e-4 * i) : i < 9 ? 6 * (1 - 1e-3 * i) : i < 16 ? 3 * (1 - 0.02 * (i - 9)) : 2 * 0.97 ** (i - 16)),
};

function relDiffMax(a: ArrayLike<number>, b: ArrayLike<number>, n: number): number {
  let d = 0;
  for (let i = 0; i < n; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!) / Math.abs(b[i]!));
  return d;
}

function assertAnglesClose(est: Float64Array, exact: Float64Array, what: string): void {
  assert.equal(est.length, exact.length);
  for (let i = 0; i < est.length; i++) {
    const tol = Math.max(0.1, 0.1 * exact[i]!);
    assert.ok(Math.abs(est[i]! - exact[i]!) <= tol, `${what}: angle ${i} est ${est[i]} exact ${exact[i]}`);
  }
}

test('topKSVD: singular values, subspaces and rank-k reconstruction meet the contract (decaying, clustered)', async () => {
  const rng = new Rng(10);
  for (const [name, sigma] of Object.entries(SPECTRA)) {
    const A = withSpectrum(sigma, rng);
    const ex = exactSVD(A); // exact SVD of the fp32 matrix itself
    for (const method of ['randomized', 'gram'] as const) {
    const r = await topKSVD(A, K, { method });
    assert.equal(r.method, method === 'gram' ? 'gram-eigen-fp64' : 'randomized-subspace-iteration-rayleigh-ritz');
    assert.ok(r.converged, `${name}: converged (residual ${r.residual}, bound ${r.angleErrorBound})`);
    assert.ok(r.residual <= 1e-6 && r.angleErrorBound <= 0.01);
    assert.deepEqual([r.U.rows, r.U.cols, r.S.length, r.V.rows, r.V.cols], [M, K, K, N, K]);
    assert.ok(relDiffMax(r.S, ex.S, K) <= 1e-4, `${name}: σ`);
    assertAnglesClose(principalAngles(r.U, sliceCols(ex.U, 0, K)), new Float64Array(K), `${name} U vs exact`);
    assertAnglesClose(principalAngles(r.V, sliceCols(ex.V, 0, K)), new Float64Array(K), `${name} V vs exact`);
    const rec = reconstruct(r.U, r.S, r.V), recEx = reconstruct(ex.U, ex.S, ex.V, K);
    const diff = mat64(M, N, rec.data.map((x, i) => x - recEx.data[i]!));
    assert.ok(frobeniusNorm(diff) / frobeniusNorm(recEx) <= 1e-4, `${name}: rank-k reconstruction`);
    assert.equal(r.params['k'], K);
    assert.equal(r.warmStartBasis.V!.cols, K + 16);
    }
  }
});

test('topKSVD: near-identical pairs W, W + εE — angles within max(0.1°, 10%), from ~0.01° to degrees, cold and warm', async () => {
  const rng = new Rng(11);
  for (const [name, sigma] of Object.entries(SPECTRA)) {
    const W = withSpectrum(sigma, rng);
    const E = randn(M, N, rng, 1 / Math.sqrt(M * N));       // ‖E‖_F ≈ 1
    const base = await topKSVD(W, K, RAND);
    const baseGram = await topKSVD(W, K); // 'auto' → the fp64 Gram path at this size
    assert.equal(baseGram.method, 'gram-eigen-fp64');
    const ex0 = exactSVD(W);
    let seenSmall = false, seenLarge = false;
    for (const eps of [3e-5, 1e-3, 3e-2, 1e-1]) {
      const Wp: Mat = { rows: M, cols: N, data: W.data.map((x, i) => x + eps * sigma[0]! * E.data[i]!) };
      const ex1 = exactSVD(Wp);
      const exactU = principalAngles(sliceCols(ex0.U, 0, K), sliceCols(ex1.U, 0, K));
      const exactV = principalAngles(sliceCols(ex0.V, 0, K), sliceCols(ex1.V, 0, K));
      const maxExact = Math.max(exactU[K - 1]!, exactV[K - 1]!);
      if (maxExact < 0.05) seenSmall = true;
      if (maxExact > 1) seenLarge = true;
      for (const warm of [false, true]) {
        const r = await topKSVD(Wp, K, warm ? { ...RAND, warmStart: base.warmStartBasis } : RAND);
        const what = `${name} ε=${eps} ${warm ? 'warm' : 'cold'}`;
        assert.ok(relDiffMax(r.S, ex1.S, K) <= 1e-4, `${what}: σ`);
        assertAnglesClose(principalAngles(base.U, r.U), exactU, `${what} U`);
        assertAnglesClose(principalAngles(base.V, r.V), exactV, `${what} V`);
      }
      const g = await topKSVD(Wp, K);
      assert.ok(relDiffMax(g.S, ex1.S, K) <= 1e-4 && g.converged, `${name} ε=${eps} gram: σ`);
      assertAnglesClose(principalAngles(baseGram.U, g.U), exactU, `${name} ε=${eps} gram U`);
      assertAnglesClose(principalAngles(baseGram.V, g.V), exactV, `${name} ε=${eps} gram V`);
    }
    assert.ok(seenSmall && seenLarge, `${name}: the pairs span tiny to large angles`);
  }
});

test('topKSVD: warm start from the base basis converges in fewer iterations than cold', async () => {
  const rng = new Rng(12);
  const W = withSpectrum(SPECTRA['decaying']!, rng);
  const base = await topKSVD(W, K, RAND);
  const Wp: Mat = { rows: M, cols: N, data: W.data.map((x) => x * (1 + 1e-4 * rng.normal())) };
  const cold = await topKSVD(Wp, K, RAND);
  const warm = await topKSVD(Wp, K, { ...RAND, warmStart: base.warmStartBasis });
  const warmU = await topKSVD(Wp, K, { ...RAND, warmStart: { U: base.U } });
  assert.ok(cold.converged && warm.converged && warmU.converged);
  assert.ok(warm.iterations < cold.iterations, `warm ${warm.iterations} < cold ${cold.iterations}`);
  assert.ok(warmU.iterations < cold.iterations, `warm(U) ${warmU.iterations} < cold ${cold.iterations}`);
  assert.equal(warm.params['warmStart'], true);
  assert.equal(cold.params['warmStart'], false);
});

test('topKSVD: W against itself gives 0°; deterministic; wide matrices; k capped at min(m, n)', async () => {
  const rng = new Rng(13);
  const W = withSpectrum(SPECTRA['clustered']!, rng);
  const a = await topKSVD(W, K, { ...RAND, seed: 5 }), b = await topKSVD(W, K, { ...RAND, seed: 5 });
  assert.deepEqual(a.S, b.S);
  assert.deepEqual(a.U.data, b.U.data);
  for (const x of principalAngles(a.U, b.U)) assert.ok(x < 1e-9);
  // A different seed: a different start, the same subspace.
  // The thread count of the fast backend does not change a single bit (MLAS splits rows and
  // columns, never the inner dimension), so outputs are reproducible across --threads.
  const t2 = await topKSVD(W, K, { ...RAND, seed: 5, threads: 2 });
  assert.deepEqual(t2.S, a.S);
  assert.deepEqual(t2.V.data, a.V.data);
  const c = await topKSVD(W, K, { ...RAND, seed: 6 });
  for (const x of principalAngles(a.V, c.V)) assert.ok(x < 0.01);
  // Multiplying by an explicit transposed copy of A (from iteration `transposeAfter` on) is a
  // speed choice: the same sums, blocked alike by MLAS for panels wider than 64 columns (then
  // bit-identical, as measured for the default l = 80) and otherwise differing only in fp32
  // rounding. Tall and wide, 1 and 2 threads, l = 28 and l = 80.
  const Wwide: Mat = { rows: N, cols: M, data: new Float32Array(M * N) };
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) Wwide.data[j * M + i] = W.data[i * N + j]!;
  for (const Wx of [W, Wwide]) for (const threads of [1, 2]) for (const k of [K, 64]) {
    const never = await topKSVD(Wx, k, { ...RAND, threads, transposeAfter: Infinity });
    const early = await topKSVD(Wx, k, { ...RAND, threads, transposeAfter: 1 });
    assert.ok(never.iterations > 2, 'several iterations run');
    assert.equal(early.iterations, never.iterations);
    assert.ok(relDiffMax(early.S, never.S, k) < 1e-6);
    for (const x of principalAngles(early.V, never.V)) assert.ok(x < 1e-3);
    for (const x of principalAngles(early.U, never.U)) assert.ok(x < 1e-3);
  }
  // Wide: the transpose's decomposition with U and V swapped.
  const Wt: Mat = { rows: N, cols: M, data: new Float32Array(M * N) };
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) Wt.data[j * M + i] = W.data[i * N + j]!;
  const t = await topKSVD(Wt, K, RAND);
  assert.deepEqual([t.U.rows, t.V.rows], [N, M]);
  assert.ok(relDiffMax(t.S, a.S, K) < 1e-6);
  for (const x of principalAngles(t.U, a.V)) assert.ok(x < 0.01);
  for (const x of principalAngles(t.V, a.U)) assert.ok(x < 0.01);
  const tg = await topKSVD(Wt, K); // wide, Gram path
  assert.deepEqual([tg.U.rows, tg.V.rows], [N, M]);
  assert.ok(relDiffMax(tg.S, a.S, K) < 1e-6);
  for (const x of principalAngles(tg.V, a.U)) assert.ok(x < 0.01);
  // k ≥ min(m, n): the full decomposition.
  const small = withSpectrum([3, 2, 1], rng, 9, 3);
  const full = await topKSVD(small, 10, RAND);
  assert.equal(full.S.length, 3);
  assert.ok(relDiffMax(full.S, [3, 2, 1], 3) < 1e-6);
  await assert.rejects(topKSVD(small, 0, RAND), /positive integer/);
});

test('principalAngles: identical subspaces 0°, a known rotation in a known plane, sines vs cosines', async () => {
  const rng = new Rng(14);
  const n = 60, k = 8;
  const A = orthonormal(n, k, rng);
  for (const x of principalAngles(A, A)) assert.ok(x < 1e-12);
  // B = A with its column 2 rotated by φ towards a direction orthogonal to span(A).
  const Q = orthonormal(n, k + 1, rng);
  const a = sliceCols(Q, 0, k);
  for (const phi of [1e-4, 0.05, 1, 30, 89.9]) {
    const b = mat64(n, k, a.data.slice());
    const r = (phi * Math.PI) / 180;
    for (let i = 0; i < n; i++) b.data[i * k + 2] = Math.cos(r) * a.data[i * k + 2]! + Math.sin(r) * Q.data[i * (k + 1) + k]!;
    const ang = principalAngles(a, b);
    for (let i = 0; i < k - 1; i++) assert.ok(ang[i]! < 1e-9, `zero angles (φ=${phi})`);
    assert.ok(Math.abs(ang[k - 1]! - phi) < 1e-9 * Math.max(1, phi), `φ=${phi}: ${ang[k - 1]}`);
  }
  // Unequal column counts: min(kA, kB) angles; symmetric.
  const c = sliceCols(a, 0, 3);
  assert.deepEqual(Array.from(principalAngles(a, c)).map((x) => x < 1e-9), [true, true, true]);
  assert.equal(principalAngles(c, a).length, 3);
  assert.throws(() => principalAngles(a, orthonormal(n + 1, 2, rng)), /rows/);
});

test('orthogonal rotation W·R in a known plane: exact and randomized angles match the construction', async () => {
  const rng = new Rng(15);
  const sigma = SPECTRA['decaying']!;
  const U = orthonormal(M, N, rng), V = orthonormal(N, N, rng);
  const W = toMat32(reconstruct(U, sigma, V));
  const base = await topKSVD(W, K, RAND);
  const ex0 = exactSVD(W);
  for (const phi of [0.2, 3, 25]) {
    // R rotates by φ in the plane (v_1, v_{K+1}): right subspace gets exactly one angle φ,
    // left subspace unchanged. W R = U Σ (Rᵀ V)ᵀ.
    const r = (phi * Math.PI) / 180;
    const WR = toMat64(W);
    const out = mat64(M, N);
    // W R = W + W (R − I), R − I = (c−1)(v1 v1ᵀ + w wᵀ) + s(w v1ᵀ − v1 wᵀ) with w = v_{K+1}.
    const c = Math.cos(r), s = Math.sin(r);
    const v1 = Float64Array.from({ length: N }, (_, i) => V.data[i * N]!);
    const w = Float64Array.from({ length: N }, (_, i) => V.data[i * N + K]!);
    for (let i = 0; i < M; i++) {
      let wv = 0, ww = 0;
      for (let j = 0; j < N; j++) { wv += WR.data[i * N + j]! * v1[j]!; ww += WR.data[i * N + j]! * w[j]!; }
      for (let j = 0; j < N; j++) {
        out.data[i * N + j] = WR.data[i * N + j]! + (c - 1) * (wv * v1[j]! + ww * w[j]!) + s * (ww * v1[j]! - wv * w[j]!);
      }
    }
    const Wrot = toMat32(out);
    const ex = exactSVD(Wrot);
    const exV = principalAngles(sliceCols(ex0.V, 0, K), sliceCols(ex.V, 0, K));
    const exU = principalAngles(sliceCols(ex0.U, 0, K), sliceCols(ex.U, 0, K));
    // Rotating v_1 towards v_{K+1} (their σ differ) changes the singular vectors, but the
    // rotated matrix's right top-K subspace is Rᵀ V_K: angles (0, …, 0, φ).
    const expected = new Float64Array(K); expected[K - 1] = phi;
    assertAnglesClose(exV, expected, `exact V φ=${phi}`);
    for (const x of exU) assert.ok(x < 0.01, 'left subspace unchanged');
    const rot = await topKSVD(Wrot, K, { ...RAND, warmStart: base.warmStartBasis });
    assertAnglesClose(principalAngles(base.V, rot.V), expected, `randomized V φ=${phi}`);
    for (const x of principalAngles(base.U, rot.U)) assert.ok(x < 0.1);
  }
});

test('spectralNorm: ‖A‖₂ and ‖ΔW‖₂ (formed once, or as an operator) against the exact σ₁', async () => {
  const rng = new Rng(16);
  const A = withSpectrum(SPECTRA['clustered']!, rng);
  const s = await spectralNorm(A);
  const ex = exactSVD(A).S[0]!;
  assert.ok(s.converged && Math.abs(s.norm - ex) / ex < 1e-5, `${s.norm} vs ${ex}`);
  // ΔW of an RL-like update: many tiny changes, flat spectrum.
  const W0 = randn(150, 90, rng, 0.02);
  const Wp: Mat = { rows: 150, cols: 90, data: W0.data.map((x) => (rng.uniform() < 0.3 ? x + 1e-4 * rng.normal() : x)) };
  const dW = subtract(Wp, W0);
  const exD = exactSVD(dW).S[0]!;
  const d1 = await spectralNorm(dW);
  assert.ok(Math.abs(d1.norm - exD) / exD < 1e-5, `ΔW: ${d1.norm} vs ${exD}`);
  assert.ok(d1.norm <= exD * (1 + 1e-6), 'a Ritz value never exceeds σ₁');
  const d2 = await spectralNorm(differenceOperator(Wp, W0));
  assert.ok(Math.abs(d2.norm - exD) / exD < 1e-4);
  assert.ok(frobeniusNorm(dW) >= d1.norm);
  const zero = await spectralNorm(subtract(W0, W0));
  assert.equal(zero.norm, 0);
});

test('pure-TS fallback (RLVR_LINALG=js) meets the same contract', async () => {
  const prev = process.env['RLVR_LINALG'];
  process.env['RLVR_LINALG'] = 'js';
  try {
    const rng = new Rng(17);
    const A = withSpectrum(SPECTRA['decaying']!.slice(0, 80), rng, 120, 80);
    const ex = exactSVD(A);
    const r = await topKSVD(A, 8, RAND);
    assert.equal(r.params['backend'], 'js');
    assert.ok(r.converged);
    assert.ok(relDiffMax(r.S, ex.S, 8) <= 1e-4);
    for (const x of principalAngles(r.V, sliceCols(ex.V, 0, 8))) assert.ok(x < 0.1);
  } finally {
    if (prev === undefined) delete process.env['RLVR_LINALG']; else process.env['RLVR_LINALG'] = prev;
  }
});

test('principalAnglesFast agrees with the Jacobi-based principalAngles (tiny to large, identical, unequal k)', async () => {
  const { principalAnglesFast } = await import('../src/linalg/index.js');
  const rng = new Rng(18);
  const n = 300, k = 10;
  const Q = orthonormal(n, 2 * k, rng);
  const a = sliceCols(Q, 0, k);
  // b: each column i rotated by φ_i towards column k+i (φ from 1e-4° to 80°).
  const phis = [1e-4, 1e-3, 0.01, 0.1, 0.5, 2, 10, 30, 60, 80];
  const b = mat64(n, k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) {
    const r = (phis[j]! * Math.PI) / 180;
    b.data[i * k + j] = Math.cos(r) * Q.data[i * 2 * k + j]! + Math.sin(r) * Q.data[i * 2 * k + k + j]!;
  }
  const slow = principalAngles(a, b), fast = await principalAnglesFast(a, b);
  for (let i = 0; i < k; i++) {
    assert.ok(Math.abs(slow[i]! - phis[i]!) < 1e-9 * Math.max(1, phis[i]!), `slow ${i}`);
    assert.ok(Math.abs(fast[i]! - phis[i]!) < 1e-6, `fast ${i}: ${fast[i]} vs ${phis[i]}`);
  }
  for (const x of await principalAnglesFast(a, a)) assert.ok(x < 1e-6);
  assert.equal((await principalAnglesFast(a, sliceCols(b, 0, 4))).length, 4);
  // All-tiny case keeps relative accuracy (the Gram error is relative to ‖M‖²).
  const tiny = mat64(n, k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) {
    const r = (1e-5 * (j + 1) * Math.PI) / 180;
    tiny.data[i * k + j] = Math.cos(r) * Q.data[i * 2 * k + j]! + Math.sin(r) * Q.data[i * 2 * k + k + j]!;
  }
  const t = await principalAnglesFast(a, tiny);
  for (let j = 0; j < k; j++) assert.ok(Math.abs(t[j]! - 1e-5 * (j + 1)) < 1e-3 * 1e-5 * (j + 1), `tiny ${j}: ${t[j]}`);
});
