/**
 * Dense row-major matrices. Weights are stored in fp32 (`Mat`, what checkpoints decode to and
 * what the fast GEMM consumes); small factors where accuracy matters (QR factors, Ritz
 * vectors, principal-angle inputs) are fp64 (`Mat64`). Element (i, j) is `data[i * cols + j]`.
 */
import { Rng } from '../util/random.js';

export interface Mat { rows: number; cols: number; data: Float32Array }
export interface Mat64 { rows: number; cols: number; data: Float64Array }
export type AnyMat = Mat | Mat64;

export function mat(rows: number, cols: number, data?: Float32Array | ArrayLike<number>): Mat {
  checkShape(rows, cols);
  const d = data === undefined ? new Float32Array(rows * cols)
    : data instanceof Float32Array ? data : Float32Array.from(data);
  if (d.length !== rows * cols) throw new RangeError(`mat: data has ${d.length} values, expected ${rows}×${cols}`);
  return { rows, cols, data: d };
}

export function mat64(rows: number, cols: number, data?: Float64Array | ArrayLike<number>): Mat64 {
  checkShape(rows, cols);
  const d = data === undefined ? new Float64Array(rows * cols)
    : data instanceof Float64Array ? data : Float64Array.from(data);
  if (d.length !== rows * cols) throw new RangeError(`mat64: data has ${d.length} values, expected ${rows}×${cols}`);
  return { rows, cols, data: d };
}

function checkShape(rows: number, cols: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) {
    throw new RangeError(`invalid matrix shape ${rows}×${cols}`);
  }
}

export function isMat64(a: AnyMat): a is Mat64 { return a.data instanceof Float64Array; }

/** fp64 copy (or the same object when already fp64). */
export function toMat64(a: AnyMat): Mat64 {
  if (isMat64(a)) return a;
  const d = new Float64Array(a.data.length);
  d.set(a.data); // native widening copy
  return { rows: a.rows, cols: a.cols, data: d };
}

/** fp32 copy (or the same object when already fp32); rounds to nearest. */
export function toMat32(a: AnyMat): Mat {
  if (!isMat64(a)) return a;
  const d = new Float32Array(a.data.length);
  d.set(a.data); // native rounding copy (round-to-nearest)
  return { rows: a.rows, cols: a.cols, data: d };
}

export function identity64(n: number): Mat64 {
  const m = mat64(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

export function transpose<T extends AnyMat>(a: T): T {
  const { rows, cols } = a;
  const out = (isMat64(a) ? new Float64Array(rows * cols) : new Float32Array(rows * cols));
  const src = a.data;
  const B = 32; // blocked so both sides stay in cache
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * rows + i] = src[i * cols + j]!;
    }
  }
  return { rows: cols, cols: rows, data: out } as T;
}

/** Columns [c0, c1) as a new matrix of the same precision. */
export function sliceCols<T extends AnyMat>(a: T, c0: number, c1: number): T {
  const w = c1 - c0;
  const out = isMat64(a) ? new Float64Array(a.rows * w) : new Float32Array(a.rows * w);
  for (let i = 0; i < a.rows; i++) out.set(a.data.subarray(i * a.cols + c0, i * a.cols + c1), i * w);
  return { rows: a.rows, cols: w, data: out } as T;
}

/** [A | B] side by side (same row count), fp64. */
export function hcat64(a: AnyMat, b: AnyMat): Mat64 {
  if (a.rows !== b.rows) throw new RangeError(`hcat: ${a.rows} vs ${b.rows} rows`);
  const c = a.cols + b.cols;
  const out = new Float64Array(a.rows * c);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < a.cols; j++) out[i * c + j] = a.data[i * a.cols + j]!;
    for (let j = 0; j < b.cols; j++) out[i * c + a.cols + j] = b.data[i * b.cols + j]!;
  }
  return { rows: a.rows, cols: c, data: out };
}

/** Gaussian matrix from the project's seeded generator. */
export function randn64(rows: number, cols: number, rng: Rng, std = 1): Mat64 {
  const m = mat64(rows, cols);
  rng.fillNormal(m.data, std);
  return m;
}

export function randn(rows: number, cols: number, rng: Rng, std = 1): Mat {
  const m = mat(rows, cols);
  rng.fillNormal(m.data, std);
  return m;
}

/** A − B elementwise, fp32 (e.g. ΔW = W+ − W0; for bf16-decoded inputs the difference is exact). */
export function subtract(a: Mat, b: Mat): Mat {
  if (a.rows !== b.rows || a.cols !== b.cols) throw new RangeError(`subtract: ${a.rows}×${a.cols} vs ${b.rows}×${b.cols}`);
  const out = new Float32Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i]! - b.data[i]!;
  return { rows: a.rows, cols: a.cols, data: out };
}

/** Frobenius norm, accumulated in fp64. */
export function frobeniusNorm(a: AnyMat): number {
  let s = 0;
  const d = a.data;
  for (let i = 0; i < d.length; i++) { const x = d[i]!; s += x * x; }
  return Math.sqrt(s);
}

/** Rank-k reconstruction U_k Σ_k V_kᵀ (fp64; U m×≥k, V n×≥k). */
export function reconstruct(U: Mat64, S: ArrayLike<number>, V: Mat64, k = S.length): Mat64 {
  const m = U.rows, n = V.rows;
  const out = new Float64Array(m * n);
  const row = new Float64Array(k);
  for (let i = 0; i < m; i++) {
    for (let t = 0; t < k; t++) row[t] = U.data[i * U.cols + t]! * S[t]!;
    const o = i * n;
    for (let j = 0; j < n; j++) {
      let s = 0;
      const vo = j * V.cols;
      for (let t = 0; t < k; t++) s += row[t]! * V.data[vo + t]!;
      out[o + j] = s;
    }
  }
  return { rows: m, cols: n, data: out };
}
