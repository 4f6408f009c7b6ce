/**
 * Matrix multiply C = op(A)·op(B), op = identity or transpose, row-major.
 *
 * Two backends:
 * - `ort`: onnxruntime-node's Gemm kernel (MLAS, hand-tuned AVX2/AVX-512/NEON sgemm shipped
 *   inside the npm package) driven through a one-node ONNX graph built in code
 *   (`ort-backend.ts`). ~30× the pure-TS kernel, within ~0.8–1× OpenBLAS.
 * - `js`: a pure-TypeScript cache-blocked kernel, fp64 accumulation. Always works; used when
 *   onnxruntime-node fails to load, or forced with env `RLVR_LINALG=js`.
 * `matmul` (async) picks the fast backend; `matmulSync` is always the pure-TS kernel.
 */
import type { AnyMat, Mat, Mat64 } from './matrix.js';
import { isMat64 } from './matrix.js';
import { loadOrtGemm, type OrtGemm } from './ort-backend.js';

export interface MatmulOptions { transA?: boolean; transB?: boolean }
export interface AsyncMatmulOptions extends MatmulOptions {
  /** Threads for the fast backend's own pool (default 1; the pure-TS kernel is single-threaded). */
  threads?: number;
  /** Force a backend (default: env RLVR_LINALG, else `ort` when it loads, else `js`). */
  backend?: 'ort' | 'js';
  /** fp32 `matmul` only: write the product into this buffer (length m·n) instead of a new one,
   *  for loops that multiply the same shapes repeatedly (saves allocation and zero-filling). */
  out?: Float32Array;
  /** `matmul64Fast` only: the same for the fp64 product (length m·n). */
  out64?: Float64Array;
}

export type LinalgBackend = 'ort' | 'js';

function dims(A: AnyMat, B: AnyMat, o: MatmulOptions): { m: number; k: number; n: number } {
  const m = o.transA ? A.cols : A.rows;
  const k = o.transA ? A.rows : A.cols;
  const kb = o.transB ? B.cols : B.rows;
  const n = o.transB ? B.rows : B.cols;
  if (k !== kb) {
    throw new RangeError(`matmul: inner dimensions differ: op(A) is ${m}×${k}, op(B) is ${kb}×${n}`);
  }
  return { m, k, n };
}

/** Pure-TS fp32 GEMM (fp64 accumulation, result rounded once to fp32). */
export function matmulSync(A: Mat, B: Mat, opts: MatmulOptions = {}): Mat {
  const { m, k, n } = dims(A, B, opts);
  const out = new Float32Array(m * n);
  gemmJs(A.data, A.rows, A.cols, !!opts.transA, B.data, B.rows, B.cols, !!opts.transB, m, k, n, out);
  return { rows: m, cols: n, data: out };
}

/** Pure-TS fp64 GEMM for the small dense factors (Ritz rotations, QR panels). */
export function matmul64(A: AnyMat, B: AnyMat, opts: MatmulOptions = {}): Mat64 {
  const { m, k, n } = dims(A, B, opts);
  const out = new Float64Array(m * n);
  gemmJs(A.data, A.rows, A.cols, !!opts.transA, B.data, B.rows, B.cols, !!opts.transB, m, k, n, out);
  return { rows: m, cols: n, data: out };
}

type Arr = Float32Array | Float64Array;

/** Copies op(X) into a row-major buffer of its own precision (transposes are cheap next to GEMM). */
function packed(x: Arr, rows: number, cols: number, trans: boolean): Arr {
  if (!trans) return x;
  const out = x instanceof Float64Array ? new Float64Array(rows * cols) : new Float32Array(rows * cols);
  const T = 32;
  for (let i0 = 0; i0 < rows; i0 += T) {
    const i1 = Math.min(rows, i0 + T);
    for (let j0 = 0; j0 < cols; j0 += T) {
      const j1 = Math.min(cols, j0 + T);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * rows + i] = x[i * cols + j]!;
    }
  }
  return out;
}

// Block sizes: a KC×NC panel of B (256×256 fp32 = 256 KiB) stays in L2 while MC rows of A stream.
const KC = 256, NC = 256;

function gemmJs(a: Arr, ar: number, ac: number, ta: boolean, b: Arr, br: number, bc: number, tb: boolean,
  m: number, k: number, n: number, out: Arr): void {
  const A = packed(a, ar, ac, ta); // now m×k row-major
  // B as fp64 always: the hot loop then sees one array type (monomorphic element loads are
  // what V8 optimizes well) whichever precision the caller used.
  const Bp = packed(b, br, bc, tb);
  const B = Bp instanceof Float64Array ? Bp : Float64Array.from(Bp);
  const acc0 = new Float64Array(NC), acc1 = new Float64Array(NC);
  // fp64 accumulation over the whole inner dimension; rounded to fp32 once at the end.
  const res = out instanceof Float64Array ? out : new Float64Array(m * n);
  for (let j0 = 0; j0 < n; j0 += NC) {
    const nb = Math.min(NC, n - j0);
    for (let p0 = 0; p0 < k; p0 += KC) {
      const p1 = Math.min(k, p0 + KC);
      let i = 0;
      // Two rows of C at a time, 4-way unrolled over the inner dimension: each B element loaded
      // feeds two FMAs, each accumulator load/store four.
      for (; i + 1 < m; i += 2) {
        const r0 = i * n + j0, r1 = r0 + n;
        for (let j = 0; j < nb; j++) { acc0[j] = res[r0 + j]!; acc1[j] = res[r1 + j]!; }
        const ao = i * k, co = ao + k;
        let p = p0;
        for (; p + 3 < p1; p += 4) {
          const a0 = A[ao + p]!, a1 = A[ao + p + 1]!, a2 = A[ao + p + 2]!, a3 = A[ao + p + 3]!;
          const c0 = A[co + p]!, c1 = A[co + p + 1]!, c2 = A[co + p + 2]!, c3 = A[co + p + 3]!;
          const b0 = p * n + j0, b1 = b0 + n, b2 = b1 + n, b3 = b2 + n;
          for (let j = 0; j < nb; j++) {
            const x0 = B[b0 + j]!, x1 = B[b1 + j]!, x2 = B[b2 + j]!, x3 = B[b3 + j]!;
            acc0[j] = acc0[j]! + a0 * x0 + a1 * x1 + a2 * x2 + a3 * x3;
            acc1[j] = acc1[j]! + c0 * x0 + c1 * x1 + c2 * x2 + c3 * x3;
          }
        }
        for (; p < p1; p++) {
          const a0 = A[ao + p]!, c0 = A[co + p]!;
          const b0 = p * n + j0;
          for (let j = 0; j < nb; j++) { const x = B[b0 + j]!; acc0[j] = acc0[j]! + a0 * x; acc1[j] = acc1[j]! + c0 * x; }
        }
        for (let j = 0; j < nb; j++) { res[r0 + j] = acc0[j]!; res[r1 + j] = acc1[j]!; }
      }
      for (; i < m; i++) {
        const ro = i * n + j0;
        for (let j = 0; j < nb; j++) acc0[j] = res[ro + j]!;
        const ao = i * k;
        for (let p = p0; p < p1; p++) {
          const a0 = A[ao + p]!;
          const b0 = p * n + j0;
          for (let j = 0; j < nb; j++) acc0[j] = acc0[j]! + a0 * B[b0 + j]!;
        }
        for (let j = 0; j < nb; j++) res[ro + j] = acc0[j]!;
      }
    }
  }
  if (res !== out) for (let i = 0; i < res.length; i++) out[i] = res[i]!;
}

let ortPromise: Promise<OrtGemm | null> | null = null;

/** The backend `matmul` uses by default ('ort' unless it failed to load or RLVR_LINALG=js). */
export async function linalgBackend(): Promise<LinalgBackend> {
  if (process.env['RLVR_LINALG'] === 'js') return 'js';
  return (await ortGemm()) ? 'ort' : 'js';
}

async function ortGemm(): Promise<OrtGemm | null> {
  if (ortPromise === null) ortPromise = loadOrtGemm().catch(() => null);
  return ortPromise;
}

/**
 * C = op(A)·op(B) in fp64 on the fast backend (MLAS dgemm through ORT; falls back to the
 * pure-TS fp64 kernel). For the O(max(m,n)·l²) parts of the SVD: Gram matrices, Ritz
 * rotations, CholeskyQR panels.
 */
export async function matmul64Fast(A: Mat64, B: Mat64, opts: AsyncMatmulOptions = {}): Promise<Mat64> {
  const { m, k, n } = dims(A, B, opts);
  const want = opts.backend ?? (process.env['RLVR_LINALG'] === 'js' ? 'js' : 'ort');
  if (want === 'ort' && m > 0 && n > 0 && k > 0) {
    const g = await ortGemm();
    if (g) return g.run64(A, B, !!opts.transA, !!opts.transB, opts.threads ?? 1, m, n, opts.out64);
  }
  const r = matmul64(A, B, opts);
  if (opts.out64 && opts.out64.length === r.data.length) { opts.out64.set(r.data); return { rows: r.rows, cols: r.cols, data: opts.out64 }; }
  return r;
}

/** C = op(A)·op(B) in fp32 on the fast backend (falls back to the pure-TS kernel). */
export async function matmul(A: Mat, B: Mat, opts: AsyncMatmulOptions = {}): Promise<Mat> {
  const { m, k, n } = dims(A, B, opts);
  const want = opts.backend ?? (process.env['RLVR_LINALG'] === 'js' ? 'js' : 'ort');
  if (want === 'ort' && m > 0 && n > 0 && k > 0) {
    const g = await ortGemm();
    if (g) {
      if (isMat64(A as AnyMat) || isMat64(B as AnyMat)) throw new TypeError('matmul: fp32 matrices expected');
      const threads = opts.threads ?? 1;
      const rows = rowBlock(m, n, threads);
      if (opts.transA || rows >= m) return g.run(A, B, !!opts.transA, !!opts.transB, threads, m, n, opts.out);
      // Tall A·B: one call per block of A's rows (A is row-major, so a block is a contiguous
      // view; so is its block of C). MLAS sweeps C once per 128-deep slice of the inner
      // dimension, so when all of C is several MiB it streams C from memory a dozen times; a
      // row block whose C stays in L2 measured 8960×1536·1536×80 at 112–119 GF/s instead of
      // 102–108 (one thread; two threads 146–175 instead of 132–155), net of the extra calls
      // and B packings. Each entry of C is the same sum in the same order either way (MLAS
      // splits rows and columns, never the inner dimension), so the product is bit-identical.
      const out = opts.out && opts.out.length === m * n ? opts.out : new Float32Array(m * n);
      for (let r0 = 0; r0 < m; r0 += rows) {
        const r1 = Math.min(m, r0 + rows);
        const block = out.subarray(r0 * n, r1 * n);
        const r = await g.run({ rows: r1 - r0, cols: k, data: A.data.subarray(r0 * k, r1 * k) }, B, false, !!opts.transB, threads, r1 - r0, n, block);
        if (r.data !== block) block.set(r.data);
      }
      return { rows: m, cols: n, data: out };
    }
  }
  return matmulSync(A, B, opts);
}

/**
 * C-row block size for `matmul`'s tall products: ~384 KiB of fp32 C per block, at least 512
 * rows (measured best with 1 and 2 threads); with more threads proportionally larger blocks,
 * so each thread's share stays about the same (not measured: the development machine has 2 cores).
 */
export function rowBlock(m: number, n: number, threads = 1): number {
  const rows = Math.max(512, Math.floor(98304 / Math.max(1, n))) * Math.max(1, Math.ceil(threads / 2));
  return m >= 2 * rows ? rows : m;
}

/**
 * Rank-k reconstruction U_k Σ_k V_kᵀ on the fast backend: one GEMM of (U_k Σ_k) (m×k) by
 * V_kᵀ (k×n). fp32 output by default (principal-weight scores: ranking ties only within fp32
 * rounding); `precision: 'fp64'` for an fp64 result (twice the memory).
 */
export async function reconstructFast(U: Mat64, S: ArrayLike<number>, V: Mat64,
  opts: { k?: number; precision?: 'fp32' | 'fp64'; threads?: number } = {}): Promise<Mat | Mat64> {
  const k = Math.min(opts.k ?? S.length, S.length, U.cols, V.cols);
  const m = U.rows, n = V.rows;
  const US = new Float64Array(m * k), Vk = new Float64Array(n * k);
  for (let i = 0; i < m; i++) for (let t = 0; t < k; t++) US[i * k + t] = U.data[i * U.cols + t]! * S[t]!;
  for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) Vk[j * k + t] = V.data[j * V.cols + t]!;
  const a: Mat64 = { rows: m, cols: k, data: US }, b: Mat64 = { rows: n, cols: k, data: Vk };
  if (opts.precision === 'fp64') return matmul64Fast(a, b, { transB: true, threads: opts.threads });
  const a32: Mat = { rows: m, cols: k, data: new Float32Array(m * k) };
  const b32: Mat = { rows: n, cols: k, data: new Float32Array(n * k) };
  a32.data.set(US); b32.data.set(Vk);
  return matmul(a32, b32, { transB: true, threads: opts.threads });
}
