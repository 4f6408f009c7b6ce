/**
 * Spectral norm ‖A‖₂ = σ_1 by Golub–Kahan–Lanczos bidiagonalization with full
 * reorthogonalization, stopped on the Lanczos residual bound. An RL update ΔW is close to a
 * sparse random matrix whose top singular values are packed at the spectrum's edge: power
 * iteration (even blocked) needs hundreds of steps there, Lanczos a few dozen.
 *
 * For ‖ΔW‖₂ with ΔW = W+ − W0: form ΔW ONCE (`subtract(Wplus, W0)`, exact for bf16-decoded
 * inputs) and pass that same matrix to `frobeniusNorm` and `spectralNorm`. A `LinearOperator`
 * is accepted too (e.g. to apply W+ and W0 separately when ΔW must not be materialized).
 */
import type { Mat } from './matrix.js';
import { matmul } from './gemm.js';
import { symmetricEigen } from './eigen.js';
import { Rng } from '../util/random.js';

/** Any m×n linear map given by its action on column blocks: A·X (trans=false) or Aᵀ·X. */
export interface LinearOperator {
  rows: number;
  cols: number;
  apply(X: Mat, trans: boolean): Promise<Mat>;
}

export interface SpectralNormOptions {
  /** Relative residual tolerance ‖Aᵀu − σv‖ ≤ tol·σ (default 1e-6). */
  tol?: number;
  maxIter?: number;   // Lanczos steps, default 300 (each: one A·v and one Aᵀ·u)
  seed?: number;      // default 0
  threads?: number;   // fast-backend threads (default 1)
}

export interface SpectralNormResult {
  /** σ_1 estimate (a Ritz value, so never above the true ‖A‖₂ beyond rounding). */
  norm: number;
  iterations: number;
  /** ‖Aᵀu − σv‖ / σ at return. */
  residual: number;
  converged: boolean;
  /** Top right and left singular vectors (n, m). */
  v: Float64Array;
  u: Float64Array;
}

/** Operator view of a dense fp32 matrix (fast GEMM backend). */
export function matOperator(A: Mat, threads = 1): LinearOperator {
  return { rows: A.rows, cols: A.cols, apply: (X, trans) => matmul(A, X, { transA: trans, threads }) };
}

/** (P − Q) as an operator without materializing the difference: two GEMMs per application. */
export function differenceOperator(P: Mat, Q: Mat, threads = 1): LinearOperator {
  if (P.rows !== Q.rows || P.cols !== Q.cols) throw new RangeError(`differenceOperator: ${P.rows}×${P.cols} vs ${Q.rows}×${Q.cols}`);
  return {
    rows: P.rows, cols: P.cols,
    async apply(X, trans) {
      const a = await matmul(P, X, { transA: trans, threads });
      const b = await matmul(Q, X, { transA: trans, threads });
      for (let i = 0; i < a.data.length; i++) a.data[i] = a.data[i]! - b.data[i]!;
      return a;
    },
  };
}

export async function spectralNorm(A: Mat | LinearOperator, opts: SpectralNormOptions = {}): Promise<SpectralNormResult> {
  const op: LinearOperator = 'apply' in A ? A : matOperator(A, opts.threads ?? 1);
  const m = op.rows, n = op.cols;
  const tol = opts.tol ?? 1e-6;
  const maxIter = Math.max(1, Math.min(opts.maxIter ?? 300, m, n));
  const zero = (): SpectralNormResult => ({ norm: 0, iterations: 0, residual: 0, converged: true, v: new Float64Array(n), u: new Float64Array(m) });
  if (m === 0 || n === 0) return zero();
  const apply = async (x: Float64Array, trans: boolean): Promise<Float64Array> => {
    const X: Mat = { rows: x.length, cols: 1, data: new Float32Array(x.length) };
    X.data.set(x);
    const r = await op.apply(X, trans);
    const out = new Float64Array(r.data.length);
    out.set(r.data);
    return out;
  };
  // Golub–Kahan–Lanczos bidiagonalization A V_k = U_k B_k (B upper bidiagonal: α on the
  // diagonal, β above), with full reorthogonalization (classical Gram–Schmidt, twice).
  const rng = new Rng(opts.seed ?? 0);
  let v: Float64Array = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = rng.normal();
  scale(v, 1 / norm2(v));
  const U: Float64Array[] = [], V: Float64Array[] = [];
  const alpha: number[] = [], beta: number[] = [];
  let best: { sigma: number; x: Float64Array; res: number } | null = null;
  let converged = false;
  for (let j = 0; j < maxIter; j++) {
    V.push(v);
    const p = await apply(v, false);                       // A v_j − β_{j−1} u_{j−1}
    if (j > 0) axpy(p, -beta[j - 1]!, U[j - 1]!);
    reorthogonalize(p, U);
    const a = norm2(p);
    if (!Number.isFinite(a)) throw new RangeError('spectralNorm: matrix has NaN or Inf entries');
    if (a === 0) {
      if (j === 0) return zero();                          // A v = 0 for a random v: A = 0
      break;                                               // invariant subspace: B_{j} is exact
    }
    alpha.push(a);
    scale(p, 1 / a);
    U.push(p);
    const r = await apply(p, true);                        // Aᵀ u_j − α_j v_j
    axpy(r, -a, v);
    reorthogonalize(r, V);
    const b = norm2(r);
    beta.push(b);
    // Ritz check (small k×k eigenproblem): every step early, then every third.
    if (j < 12 || j % 3 === 2 || b === 0 || j === maxIter - 1) {
      best = ritz(alpha, beta);
      if (best.res <= tol) { converged = true; break; }
    }
    if (b === 0) break;
    v = r;
    scale(v, 1 / b);
  }
  if (!best || best.x.length !== alpha.length) best = ritz(alpha, beta);
  if (best.res <= tol) converged = true;
  const { sigma, x } = best;
  const k = alpha.length;
  // u = U x; v = V y with y = Bᵀ x / σ.
  const u = new Float64Array(m), vv = new Float64Array(n);
  for (let i = 0; i < k; i++) axpy(u, x[i]!, U[i]!);
  for (let i = 0; i < k; i++) {
    const yi = (alpha[i]! * x[i]! + (i > 0 ? beta[i - 1]! * x[i - 1]! : 0)) / (sigma > 0 ? sigma : 1);
    axpy(vv, yi, V[i]!);
  }
  return { norm: sigma, iterations: k, residual: best.res, converged, v: vv, u };
}

/** Top singular triplet of the k×k upper bidiagonal B via the eigenproblem of B·Bᵀ; residual
 *  ‖Aᵀ(Ux) − σ V y‖ / σ = β_k |x_k| / σ (the Lanczos bound, exact with full reorthogonalization). */
function ritz(alpha: number[], beta: number[]): { sigma: number; x: Float64Array; res: number } {
  const k = alpha.length;
  const T = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    T[i * k + i] = alpha[i]! ** 2 + (i < k - 1 ? beta[i]! ** 2 : 0);
    if (i < k - 1) { const o = beta[i]! * alpha[i + 1]!; T[i * k + i + 1] = o; T[(i + 1) * k + i] = o; }
  }
  const e = symmetricEigen({ rows: k, cols: k, data: T });
  const sigma = Math.sqrt(Math.max(0, e.values[0]!));
  const x = Float64Array.from({ length: k }, (_, i) => e.vectors.data[i * k]!);
  const bk = beta[k - 1] ?? 0;
  return { sigma, x, res: sigma > 0 ? (bk * Math.abs(x[k - 1]!)) / sigma : 0 };
}

function norm2(x: Float64Array): number { let s = 0; for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!; return Math.sqrt(s); }
function scale(x: Float64Array, c: number): void { for (let i = 0; i < x.length; i++) x[i] = x[i]! * c; }
function axpy(y: Float64Array, a: number, x: Float64Array): void { for (let i = 0; i < y.length; i++) y[i] = y[i]! + a * x[i]!; }
function reorthogonalize(w: Float64Array, Q: Float64Array[]): void {
  for (let pass = 0; pass < 2; pass++) {
    for (const q of Q) {
      let d = 0;
      for (let i = 0; i < w.length; i++) d += q[i]! * w[i]!;
      if (d !== 0) axpy(w, -d, q);
    }
  }
}




