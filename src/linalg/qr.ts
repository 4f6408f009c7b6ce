/**
 * Thin QR of a tall-skinny fp64 matrix by Householder reflections (backward stable, unlike
 * Gram–Schmidt or CholeskyQR on ill-conditioned panels). diag(R) ≥ 0, so for a full-rank
 * input the factorization is unique and deterministic.
 */
import type { Mat64 } from './matrix.js';

export interface QR { Q: Mat64; R: Mat64 }

/** A (m×n) = Q (m×r) R (r×n), r = min(m, n), QᵀQ = I, R upper triangular with R_jj ≥ 0. */
export function qrThin(A: Mat64): QR {
  const { rows: m, cols: n } = A;
  const r = Math.min(m, n);
  // Work on Aᵀ so each column of A is a contiguous row of W.
  const W = new Float64Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) W[j * m + i] = A.data[i * n + j]!;
  const beta = new Float64Array(r);
  const diag = new Float64Array(r);
  for (let j = 0; j < r; j++) {
    const cj = j * m;
    let norm2 = 0;
    for (let i = j; i < m; i++) norm2 += W[cj + i]! * W[cj + i]!;
    const norm = Math.sqrt(norm2);
    if (norm === 0) { beta[j] = 0; diag[j] = 0; continue; }
    const x0 = W[cj + j]!;
    const alpha = x0 >= 0 ? -norm : norm;
    W[cj + j] = x0 - alpha; // v = x − αe₁, stored in place
    const vtv = norm2 - x0 * x0 + (x0 - alpha) * (x0 - alpha);
    const b = 2 / vtv;
    beta[j] = b; diag[j] = alpha;
    for (let c = j + 1; c < n; c++) {
      const cc = c * m;
      let dot = 0;
      for (let i = j; i < m; i++) dot += W[cj + i]! * W[cc + i]!;
      const f = b * dot;
      if (f !== 0) for (let i = j; i < m; i++) W[cc + i] = W[cc + i]! - f * W[cj + i]!;
    }
  }
  // R (r×n): diagonal from diag, above it the transformed columns.
  const R = new Float64Array(r * n);
  for (let j = 0; j < r; j++) {
    R[j * n + j] = diag[j]!;
    for (let c = j + 1; c < n; c++) R[j * n + c] = W[c * m + j]!;
  }
  // Q = H_0 H_1 … H_{r−1} [I_r; 0], built as Qᵀ rows (contiguous), reflectors applied in reverse.
  const Qt = new Float64Array(r * m);
  for (let c = 0; c < r; c++) Qt[c * m + c] = 1;
  for (let j = r - 1; j >= 0; j--) {
    const b = beta[j]!;
    if (b === 0) continue;
    const cj = j * m;
    for (let c = j; c < r; c++) { // columns c < j of the partial product are still e_c, untouched by H_j
      const cc = c * m;
      let dot = 0;
      for (let i = j; i < m; i++) dot += W[cj + i]! * Qt[cc + i]!;
      const f = b * dot;
      if (f !== 0) for (let i = j; i < m; i++) Qt[cc + i] = Qt[cc + i]! - f * W[cj + i]!;
    }
  }
  // Sign fix: make diag(R) ≥ 0.
  for (let j = 0; j < r; j++) {
    if (R[j * n + j]! < 0) {
      for (let c = j; c < n; c++) R[j * n + c] = -R[j * n + c]!;
      for (let i = 0; i < m; i++) Qt[j * m + i] = -Qt[j * m + i]!;
    }
  }
  const Q = new Float64Array(m * r);
  for (let c = 0; c < r; c++) for (let i = 0; i < m; i++) Q[i * r + c] = Qt[c * m + i]!;
  return { Q: { rows: m, cols: r, data: Q }, R: { rows: r, cols: n, data: R } };
}

/** An orthonormal basis of the column space of A (m×n, m ≥ n): the Q of its thin QR. */
export function orthonormalize(A: Mat64): Mat64 {
  return qrThin(A).Q;
}

/**
 * Upper-triangular Cholesky factor of a symmetric positive definite matrix (G = RᵀR), or null
 * when G is not numerically positive definite (a pivot below `rel`·max diag).
 */
export function choleskyUpper(G: Mat64, rel = 1e-13): Mat64 | null {
  const n = G.rows;
  const R = new Float64Array(n * n);
  let maxDiag = 0;
  for (let i = 0; i < n; i++) maxDiag = Math.max(maxDiag, G.data[i * n + i]!);
  if (!(maxDiag > 0)) return null;
  for (let j = 0; j < n; j++) {
    let d = G.data[j * n + j]!;
    for (let p = 0; p < j; p++) d -= R[p * n + j]! * R[p * n + j]!;
    if (!(d > rel * maxDiag)) return null;
    const rjj = Math.sqrt(d);
    R[j * n + j] = rjj;
    for (let c = j + 1; c < n; c++) {
      let s = G.data[j * n + c]!;
      for (let p = 0; p < j; p++) s -= R[p * n + j]! * R[p * n + c]!;
      R[j * n + c] = s / rjj;
    }
  }
  return { rows: n, cols: n, data: R };
}

/** Inverse of an upper-triangular matrix (upper triangular). */
export function invertUpper(R: Mat64): Mat64 {
  const n = R.rows;
  const X = new Float64Array(n * n);
  for (let j = n - 1; j >= 0; j--) {
    X[j * n + j] = 1 / R.data[j * n + j]!;
    for (let c = j + 1; c < n; c++) {
      let s = 0;
      for (let p = j + 1; p <= c; p++) s += R.data[j * n + p]! * X[p * n + c]!;
      X[j * n + c] = -s / R.data[j * n + j]!;
    }
  }
  return { rows: n, cols: n, data: X };
}
