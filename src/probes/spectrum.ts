/**
 * Spectral probes of one weight pair (paper §4.1; SPEC §3): principal angles between the
 * top-k singular subspaces of W0 and W+ (left U and right V), the maximum angle per tensor,
 * the normalized spectral shift NSS = ‖σ(W+) − σ(W0)‖₂ / ‖σ(W0)‖₂ over the top-k (or the
 * full spectrum), and singular value curves.
 *
 * These are pure functions of decompositions; computing the decompositions (randomized,
 * residual-converged, warm-started from the base; or exact) and caching them is
 * src/run/geometry.ts's job. Angles are in degrees, ascending (θ_1 ≤ … ≤ θ_k).
 */
import type { Mat, Mat64 } from '../linalg/index.js';
import { matmul64Fast, principalAnglesFast, symmetricEigen, toMat64 } from '../linalg/index.js';

/** Left/right singular bases (orthonormal columns) of one matrix. */
export interface SingularBases { U: Mat64; V: Mat64 }

export interface AngleCurves {
  /** Principal angles (degrees, ascending) between span(U0_k) and span(U+_k). */
  u: Float64Array;
  /** Same for the right subspaces V. */
  v: Float64Array;
  maxU: number;
  maxV: number;
  /** max(maxU, maxV). */
  max: number;
}

/**
 * Principal-angle curves of the top-k left and right subspaces (k = the bases' column
 * count), via `principalAnglesFast` (fp64 GEMM + k×k eigenvalues; ~1e-6° of the Jacobi
 * reference, sines for small angles so W vs W gives 0).
 */
export async function principalAngleCurves(base: SingularBases, tuned: SingularBases, threads = 1): Promise<AngleCurves> {
  const u = await principalAnglesFast(base.U, tuned.U, { threads });
  const v = await principalAnglesFast(base.V, tuned.V, { threads });
  const maxU = u.length ? u[u.length - 1]! : 0;
  const maxV = v.length ? v[v.length - 1]! : 0;
  return { u, v, maxU, maxV, max: Math.max(maxU, maxV) };
}

/**
 * NSS = ‖σ(W+) − σ(W0)‖₂ / ‖σ(W0)‖₂ over the first min(len) values (both descending).
 * 0 when σ(W0) = 0 and the spectra agree; Infinity when only σ(W0) is zero.
 */
export function normalizedSpectralShift(s0: ArrayLike<number>, s1: ArrayLike<number>): number {
  const n = Math.min(s0.length, s1.length);
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) { const d = s1[i]! - s0[i]!; num += d * d; den += s0[i]! * s0[i]!; }
  if (den === 0) return num === 0 ? 0 : Infinity;
  return Math.sqrt(num / den);
}

/**
 * All min(m, n) singular values (descending) from the eigenvalues of the short-side Gram
 * matrix in fp64 (`--full-spectrum`). σ_i below ~1e-8·σ_1 are not resolved by the Gram route
 * (they come out as √(rounding)); they contribute nothing visible to NSS, which is dominated
 * by the large values. O(s²·L) flops on the fast fp64 GEMM plus an s×s eigensolve.
 */
export async function fullSpectrum(W: Mat | Mat64, threads = 1): Promise<Float64Array> {
  const A = toMat64(W);
  const tall = A.rows >= A.cols;
  const G = await matmul64Fast(A, A, tall ? { transA: true, threads } : { transB: true, threads });
  const vals = symmetricEigen(G).values;
  return Float64Array.from(vals, (x) => Math.sqrt(Math.max(0, x)));
}

/** Maximum entry (0 for an empty curve). */
export function maxOf(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (a[i]! > m) m = a[i]!;
  return m;
}
