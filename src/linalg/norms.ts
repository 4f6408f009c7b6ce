/**
 * Spectral norm ‖A‖₂ = σ_1 by block power iteration (a small block with Rayleigh–Ritz
 * converges on σ_1 much faster than single-vector power iteration when σ_1 ≈ σ_2, as is
 * typical of an RL update ΔW), stopped on a residual tolerance.
 *
 * For ‖ΔW‖₂ with ΔW = W+ − W0: form ΔW ONCE (`subtract(Wplus, W0)`, exact for bf16-decoded
 * inputs) and pass that same matrix to `frobeniusNorm` and `spectralNorm`. A `LinearOperator`
 * is accepted too (e.g. to apply W+ and W0 separately when ΔW must not be materialized).
 */
import type { Mat, Mat64 } from './matrix.js';
import { randn64, toMat64 } from './matrix.js';
import { matmul } from './gemm.js';
import { qrThin } from './qr.js';
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
  maxIter?: number;   // default 500
  seed?: number;      // default 0
  block?: number;     // block size (default 4)
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
  const tol = opts.tol ?? 1e-6, maxIter = opts.maxIter ?? 500;
  const b = Math.max(1, Math.min(opts.block ?? 4, m, n));
  if (m === 0 || n === 0) return { norm: 0, iterations: 0, residual: 0, converged: true, v: new Float64Array(n), u: new Float64Array(m) };
  let X = qrThin(randn64(n, b, new Rng(opts.seed ?? 0))).Q;
  let it = 0, res = Infinity, sigma = 0;
  let v: Float64Array = new Float64Array(n), u: Float64Array = new Float64Array(m);
  const history: number[] = [];
  for (;;) {
    it++;
    const Y = toMat64(await op.apply(to32(X), false));           // m×b
    const G = gramT(Y);
    const e = symmetricEigen(G);
    sigma = Math.sqrt(Math.max(0, e.values[0]!));
    const w = column(e.vectors, 0);
    const Z = toMat64(await op.apply(to32(Y), true));            // n×b = AᵀA X
    v = mulVec(X, w); u = mulVec(Y, w);
    const zw = mulVec(Z, w);
    if (sigma === 0) { res = 0; break; }
    let acc = 0;
    for (let i = 0; i < n; i++) { const d = zw[i]! / sigma - sigma * v[i]!; acc += d * d; }
    res = Math.sqrt(acc) / sigma;
    for (let i = 0; i < m; i++) u[i] = u[i]! / sigma;
    if (res <= tol) break;
    history.push(res);
    const h = history.length;
    if (h >= 8 && history[h - 1]! > 0.9 * Math.min(...history.slice(0, h - 7))) break;
    if (it >= maxIter) break;
    X = qrThin(mulMat(Z, e.vectors)).Q;
  }
  return { norm: sigma, iterations: it, residual: res, converged: res <= tol, v, u };
}

function to32(a: Mat64): Mat { return { rows: a.rows, cols: a.cols, data: Float32Array.from(a.data) }; }

function gramT(Y: Mat64): Mat64 {
  const { rows, cols: b } = Y;
  const G = new Float64Array(b * b);
  for (let i = 0; i < rows; i++) for (let p = 0; p < b; p++) {
    const x = Y.data[i * b + p]!;
    for (let q = 0; q < b; q++) G[p * b + q] = G[p * b + q]! + x * Y.data[i * b + q]!;
  }
  return { rows: b, cols: b, data: G };
}

function column(a: Mat64, c: number): Float64Array {
  return Float64Array.from({ length: a.rows }, (_, i) => a.data[i * a.cols + c]!);
}

function mulVec(A: Mat64, w: Float64Array): Float64Array {
  const out = new Float64Array(A.rows);
  for (let i = 0; i < A.rows; i++) { let s = 0; for (let j = 0; j < A.cols; j++) s += A.data[i * A.cols + j]! * w[j]!; out[i] = s; }
  return out;
}

function mulMat(A: Mat64, B: Mat64): Mat64 {
  const out = new Float64Array(A.rows * B.cols);
  for (let i = 0; i < A.rows; i++) for (let p = 0; p < A.cols; p++) {
    const a = A.data[i * A.cols + p]!;
    for (let j = 0; j < B.cols; j++) out[i * B.cols + j] = out[i * B.cols + j]! + a * B.data[p * B.cols + j]!;
  }
  return { rows: A.rows, cols: B.cols, data: out };
}
