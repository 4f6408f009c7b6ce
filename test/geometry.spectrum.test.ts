/**
 * SPEC §3 accuracy contract of the geometry pass (base solved cold, tuned warm-started from the
 * base's Ritz basis, as runGeometry does): σ within 1e-4 relative, angles within
 * max(0.1°, 10%) of exact, W vs W = 0°, known rotations, NSS; SPEC §5 bounds on random pairs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Mat, type Mat64, exactSVD, frobeniusNorm, qrThin, randn64, reconstruct, spectralNorm, subtract, toMat32 } from '../src/linalg/index.js';
import { theoryChecks } from '../src/probes/bounds.js';
import { fullSpectrum, normalizedSpectralShift, principalAngleCurves } from '../src/probes/spectrum.js';
import { DEFAULT_SOLVER as AUTO, type SolverSettings, decomposeWeight } from '../src/run/geometry.js';

// These matrices are small enough for topKSVD's 'auto' to pick the fp64 Gram path; the contract
// is checked on the randomized subspace iteration (what real 1536+ wide weights use) and on auto.
const DEFAULT_SOLVER: SolverSettings = { ...AUTO, method: 'randomized' };
import { Rng } from '../src/util/random.js';

const M = 140, N = 90, K = 10;
function orthonormal(n: number, k: number, rng: Rng): Mat64 { return qrThin(randn64(n, k, rng)).Q; }
function withSpectrum(sigma: number[], rng: Rng): { W: Mat; U: Mat64; V: Mat64 } {
  const U = orthonormal(M, sigma.length, rng), V = orthonormal(N, sigma.length, rng);
  return { W: toMat32(reconstruct(U, sigma, V)), U, V };
}
const SPECTRA: Record<string, number[]> = {
  decaying: Array.from({ length: N }, (_, i) => 0.9 ** i),
  clustered: Array.from({ length: N }, (_, i) => (i < 4 ? 10 * (1 - 1e-4 * i) : i < 12 ? 4 * (1 - 0.03 * (i - 4)) : 2 * 0.95 ** (i - 12))),
};

function perturb(W: Mat, eps: number, rng: Rng): Mat {
  const d = new Float32Array(W.data.length);
  for (let i = 0; i < d.length; i++) d[i] = W.data[i]! + eps * rng.normal();
  return { rows: W.rows, cols: W.cols, data: d };
}

function assertAngles(est: Float64Array, exact: Float64Array, what: string): void {
  for (let i = 0; i < est.length; i++) {
    assert.ok(Math.abs(est[i]! - exact[i]!) <= Math.max(0.1, 0.1 * exact[i]!), `${what}: angle ${i} est ${est[i]} exact ${exact[i]}`);
  }
}

for (const [name, sigma] of Object.entries(SPECTRA)) {
  test(`near-identical pair W, W + εE (${name}): warm-started angles, σ and NSS match the exact SVD`, async () => {
    const rng = new Rng(name.length);
    const { W } = withSpectrum(sigma, rng);
    for (const eps of [1e-4, 3e-3]) {
      const W1 = perturb(W, eps, rng);
      const d0 = await decomposeWeight(W, K, false, DEFAULT_SOLVER, null);
      const d1 = await decomposeWeight(W1, K, false, DEFAULT_SOLVER, d0.basis);
      const e0 = exactSVD(W), e1 = exactSVD(W1);
      for (let i = 0; i < K; i++) {
        assert.ok(Math.abs(d0.S[i]! - e0.S[i]!) <= 1e-4 * e0.S[i]!, `σ0_${i}`);
        assert.ok(Math.abs(d1.S[i]! - e1.S[i]!) <= 1e-4 * e1.S[i]!, `σ1_${i}`);
      }
      const cut = (F: Mat64): Mat64 => ({ rows: F.rows, cols: K, data: Float64Array.from({ length: F.rows * K }, (_, t) => F.data[Math.floor(t / K) * F.cols + (t % K)]!) });
      const est = await principalAngleCurves(d0, d1);
      const ex = await principalAngleCurves({ U: cut(e0.U), V: cut(e0.V) }, { U: cut(e1.U), V: cut(e1.V) });
      assertAngles(est.u, ex.u, `${name} ε=${eps} U`);
      assertAngles(est.v, ex.v, `${name} ε=${eps} V`);
      const nssEst = normalizedSpectralShift(d0.S, d1.S), nssEx = normalizedSpectralShift(e0.S.slice(0, K), e1.S.slice(0, K));
      assert.ok(Math.abs(nssEst - nssEx) <= 1e-4 * nssEx + 1e-6, `NSS ${nssEst} vs ${nssEx}`);
      // σ_{k+1} from the Ritz basis (for δ_k)
      assert.ok(Math.abs(d0.sigmaNext! - e0.S[K]!) <= 1e-3 * e0.S[K]!, `σ_{k+1} ${d0.sigmaNext} vs ${e0.S[K]}`);
      assert.equal(d1.info.method, 'randomized-subspace-iteration-rayleigh-ritz');
      // the auto path (fp64 Gram eigen here) meets the same contract
      const g0 = await decomposeWeight(W, K, false, AUTO, null), g1 = await decomposeWeight(W1, K, false, AUTO, g0.basis);
      const ga = await principalAngleCurves(g0, g1);
      assertAngles(ga.u, ex.u, `${name} ε=${eps} U (auto: ${g1.info.method})`);
      assertAngles(ga.v, ex.v, `${name} ε=${eps} V (auto)`);
      for (let i = 0; i < K; i++) assert.ok(Math.abs(g1.S[i]! - e1.S[i]!) <= 1e-4 * e1.S[i]!);
    }
  });
}

test('W against itself gives 0° (randomized, warm-started, and exact)', async () => {
  const { W } = withSpectrum(SPECTRA.decaying!, new Rng(5));
  const d0 = await decomposeWeight(W, K, false, DEFAULT_SOLVER, null);
  const d1 = await decomposeWeight(W, K, false, DEFAULT_SOLVER, d0.basis);
  const c = await principalAngleCurves(d0, d1);
  assert.ok(c.max < 1e-3, `max angle ${c.max}`);
  const e = await decomposeWeight(W, K, true, DEFAULT_SOLVER, null);
  assert.ok((await principalAngleCurves(e, e)).max < 1e-6);
});

test('a rotation of the top singular pair by θ in the left space gives θ in U and 0 in V', async () => {
  const rng = new Rng(9);
  const sigma = Array.from({ length: N }, (_, i) => 0.85 ** i);
  const U = orthonormal(M, N, rng), V = orthonormal(N, N, rng);
  const theta = 5; // degrees: rotate u_1 towards u_{K+5} (outside the top-K)
  const c = Math.cos(theta * Math.PI / 180), s = Math.sin(theta * Math.PI / 180);
  const U1 = { rows: M, cols: N, data: Float64Array.from(U.data) };
  for (let i = 0; i < M; i++) { // a Givens rotation in the (u_1, u_{K+5}) plane keeps U orthonormal
    U1.data[i * N] = c * U.data[i * N]! + s * U.data[i * N + K + 5]!;
    U1.data[i * N + K + 5] = -s * U.data[i * N]! + c * U.data[i * N + K + 5]!;
  }
  const W0 = toMat32(reconstruct(U, sigma, V)), W1 = toMat32(reconstruct(U1, sigma, V));
  const d0 = await decomposeWeight(W0, K, false, DEFAULT_SOLVER, null);
  const d1 = await decomposeWeight(W1, K, false, DEFAULT_SOLVER, d0.basis);
  const a = await principalAngleCurves(d0, d1);
  assert.ok(Math.abs(a.maxU - theta) < 0.1, `max U angle ${a.maxU}`);
  assert.ok(a.maxV < 0.1, `max V angle ${a.maxV}`);
  assert.ok(a.u[K - 2]! < 0.1, 'only one direction rotated');
  assert.equal(normalizedSpectralShift(d0.S, d0.S), 0);
});

test('fullSpectrum (Gram eigenvalues) matches the exact singular values', async () => {
  const { W } = withSpectrum(SPECTRA.decaying!, new Rng(2));
  const f = await fullSpectrum(W);
  const e = exactSVD(W).S;
  for (let i = 0; i < 20; i++) assert.ok(Math.abs(f[i]! - e[i]!) <= 1e-5 * e[0]!, `σ_${i}`);
});

test('property: SPEC §5 bounds hold on random matrix pairs (exact and randomized decompositions)', async () => {
  const rng = new Rng(11);
  for (let trial = 0; trial < 6; trial++) {
    const sigma = Array.from({ length: N }, (_, i) => (trial % 2 ? 0.9 ** i : 1 / (1 + i)));
    const { W } = withSpectrum(sigma, rng);
    const W1 = perturb(W, [1e-3, 1e-2, 5e-2][trial % 3]!, rng);
    const dW = subtract(W1, W);
    const dF = frobeniusNorm(dW), d2 = (await spectralNorm(dW, { tol: 1e-8 })).norm;
    for (const exact of [true, false]) {
      const d0 = await decomposeWeight(W, K, exact, DEFAULT_SOLVER, null);
      const d1 = await decomposeWeight(W1, K, exact, DEFAULT_SOLVER, exact ? null : d0.basis);
      const a = await principalAngleCurves(d0, d1);
      const ch = theoryChecks({ s0: d0.S, s1: d1.S, sigmaNext0: d0.sigmaNext, maxAngleDeg: a.max, deltaFrobenius: dF, deltaSpectral: d2 });
      for (const c of ['wedin', 'weyl', 'hoffmanWielandt', 'kyFan'] as const) {
        assert.ok(ch[c].holds, `trial ${trial} exact=${exact} ${c}: ${ch[c].measured} > ${ch[c].bound}`);
        if (c !== 'wedin') assert.ok(ch[c].bound !== null && ch[c].measured >= 0);
      }
      assert.ok(ch.gap! > 0);
    }
  }
});

test('theoryChecks: hand case and undefined Wedin bound', () => {
  const ch = theoryChecks({ s0: [3, 2], s1: [3.5, 1.5], sigmaNext0: 1, maxAngleDeg: 30, deltaFrobenius: 1, deltaSpectral: 0.6 });
  assert.equal(ch.gap, 1);
  assert.equal(ch.weyl.measured, 0.5); assert.equal(ch.weyl.bound, 0.6); assert.ok(ch.weyl.holds);
  assert.equal(ch.hoffmanWielandt.measured, 0.5); assert.equal(ch.hoffmanWielandt.bound, 1);
  assert.equal(ch.kyFan.measured, 0); assert.equal(ch.kyFan.bound, 1.2);
  assert.ok(Math.abs(ch.wedin.measured - 0.5) < 1e-12); assert.equal(ch.wedin.bound, 0.6); assert.ok(ch.wedin.holds);
  const bad = theoryChecks({ s0: [3, 2], s1: [3, 2], sigmaNext0: 2, maxAngleDeg: 10, deltaFrobenius: 0.1, deltaSpectral: 0.1 });
  assert.equal(bad.wedin.bound, null); assert.ok(bad.wedin.holds);
  const viol = theoryChecks({ s0: [3], s1: [4], sigmaNext0: 1, maxAngleDeg: 0, deltaFrobenius: 0.5, deltaSpectral: 0.5 });
  assert.equal(viol.weyl.holds, false);
});
