/**
 * Principal angles between column spaces, in fp64 and accurate for tiny angles (SPEC §3).
 * cos θ from σ(AᵀB) loses everything below ~1e-8 rad (cos θ = 1 − θ²/2 rounds to 1), so small
 * angles come from sines, σ((I − AAᵀ)B), and large ones from cosines (Knyazev & Argentati 2002).
 */
import type { Mat64 } from './matrix.js';
import { exactSVD } from './svd-dense.js';
import { matmul64Fast } from './gemm.js';
import { symmetricEigen } from './eigen.js';

const RAD2DEG = 180 / Math.PI;

/**
 * Angles in degrees, ascending, between span(A) and span(B) for A (n×kA), B (n×kB) with
 * orthonormal columns; min(kA, kB) angles. Identical subspaces give 0 up to ~1e-14°.
 */
export function principalAngles(A: Mat64, B: Mat64): Float64Array {
  if (A.rows !== B.rows) throw new RangeError(`principalAngles: ${A.rows} vs ${B.rows} rows`);
  if (B.cols > A.cols) [A, B] = [B, A];
  const n = A.rows, ka = A.cols, kb = B.cols;
  if (kb === 0) return new Float64Array(0);
  // C = AᵀB (ka×kb).
  const C = new Float64Array(ka * kb);
  for (let i = 0; i < n; i++) {
    const ao = i * ka, bo = i * kb;
    for (let a = 0; a < ka; a++) {
      const x = A.data[ao + a]!;
      if (x === 0) continue;
      const co = a * kb;
      for (let b = 0; b < kb; b++) C[co + b] = C[co + b]! + x * B.data[bo + b]!;
    }
  }
  // M = B − A C = (I − AAᵀ)B (n×kb).
  const M = new Float64Array(n * kb);
  for (let i = 0; i < n; i++) {
    const ao = i * ka, bo = i * kb;
    for (let b = 0; b < kb; b++) {
      let s = B.data[bo + b]!;
      for (let a = 0; a < ka; a++) s -= A.data[ao + a]! * C[a * kb + b]!;
      M[bo + b] = s;
    }
  }
  const cos = exactSVD({ rows: ka, cols: kb, data: C }).S;             // descending
  const sin = exactSVD({ rows: n, cols: kb, data: M }).S.slice().reverse(); // ascending
  const out = new Float64Array(kb);
  for (let i = 0; i < kb; i++) {
    const s = Math.min(1, sin[i]!);
    const c = Math.min(1, cos[i]!);
    out[i] = (s * s <= 0.5 ? Math.asin(s) : Math.acos(c)) * RAD2DEG;
  }
  // Guard monotonicity across the sine/cosine switch (both are accurate there to ~1e-15).
  for (let i = 1; i < kb; i++) if (out[i]! < out[i - 1]!) out[i] = out[i - 1]!;
  return out;
}

/**
 * `principalAngles` on the fast fp64 backend, for real weights (n up to ~10⁴, k = 64): the
 * products AᵀB and B − A(AᵀB) run as MLAS dgemm, and the sines come from the eigenvalues of
 * the k×k Gram matrix MᵀM (M = (I − AAᵀ)B). The Gram squares the sines, but its error is
 * relative to ‖M‖², so tiny angles stay accurate when all angles are tiny, and in the mixed
 * case the absolute error is ~√ε·‖M‖ ≈ 1e-8 rad (6e-7°): far below anything reported.
 */
export async function principalAnglesFast(A: Mat64, B: Mat64, opts: { threads?: number } = {}): Promise<Float64Array> {
  if (A.rows !== B.rows) throw new RangeError(`principalAngles: ${A.rows} vs ${B.rows} rows`);
  if (B.cols > A.cols) [A, B] = [B, A];
  const kb = B.cols;
  if (kb === 0) return new Float64Array(0);
  const threads = opts.threads ?? 1;
  const C = await matmul64Fast(A, B, { transA: true, threads });            // ka×kb
  const AC = await matmul64Fast(A, C, { threads });                          // n×kb
  const M = new Float64Array(B.data.length);
  for (let i = 0; i < M.length; i++) M[i] = B.data[i]! - AC.data[i]!;
  const Mm: Mat64 = { rows: B.rows, cols: kb, data: M };
  const sin2 = symmetricEigen(await matmul64Fast(Mm, Mm, { transA: true, threads }), { vectors: false }).values; // descending
  const cos2 = symmetricEigen(await matmul64Fast(C, C, { transA: true, threads }), { vectors: false }).values;   // descending
  const out = new Float64Array(kb);
  for (let i = 0; i < kb; i++) {
    const s = Math.min(1, Math.sqrt(Math.max(0, sin2[kb - 1 - i]!)));
    const c = Math.min(1, Math.sqrt(Math.max(0, cos2[i]!)));
    out[i] = (s * s <= 0.5 ? Math.asin(s) : Math.acos(c)) * RAD2DEG;
  }
  for (let i = 1; i < kb; i++) if (out[i]! < out[i - 1]!) out[i] = out[i - 1]!;
  return out;
}
