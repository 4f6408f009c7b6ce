/**
 * Exact (dense, fp64) thin SVD by one-sided Jacobi (Hestenes), after a Householder QR when
 * the matrix is tall. Jacobi is slower than Golub–Kahan but simple, and accurate to high
 * relative precision even for tiny singular values — the reference every approximate path
 * is tested against, and the `--exact` path for chosen tensors.
 */
import type { AnyMat, Mat64 } from './matrix.js';
import { toMat64, transpose } from './matrix.js';
import { qrThin } from './qr.js';

export interface DenseSVD { U: Mat64; S: Float64Array; V: Mat64 }

/**
 * A (m×n) = U diag(S) Vᵀ with r = min(m, n): U m×r, V n×r orthonormal columns, S descending,
 * ≥ 0. Signs fixed so each column of V has its largest-magnitude entry positive.
 */
export function exactSVD(A: AnyMat): DenseSVD {
  const a = toMat64(A);
  for (let i = 0; i < a.data.length; i++) {
    if (!Number.isFinite(a.data[i]!)) throw new RangeError('exactSVD: matrix has NaN or Inf entries');
  }
  if (a.rows < a.cols) {
    const t = exactSVD(transpose(a));
    return fixSigns({ U: t.V, S: t.S, V: t.U }, false);
  }
  const m = a.rows, n = a.cols;
  if (n === 0) return { U: { rows: m, cols: 0, data: new Float64Array(0) }, S: new Float64Array(0), V: { rows: 0, cols: 0, data: new Float64Array(0) } };
  // Tall: A = Q R, SVD of the n×n R (Jacobi converges faster on it, and costs n² not mn per rotation).
  let Qa: Mat64 | null = null;
  let work = a;
  if (m > n) { const f = qrThin(a); Qa = f.Q; work = f.R; }
  const rows = work.rows;
  // Columns of `work` as contiguous rows of G (n × rows), V as n columns of length n.
  const G = transpose(work).data;
  const Vc = new Float64Array(n * n);
  for (let j = 0; j < n; j++) Vc[j * n + j] = 1;
  // Orthogonality threshold: rounding in the dot products is ~√rows·ε, so a fixed 1e-15 can
  // cycle forever; rows·ε keeps relative accuracy far below anything the probes resolve.
  const tol = Math.max(1e-15, rows * 2.220446049250313e-16);
  for (let sweep = 0; ; sweep++) {
    if (sweep > 80) throw new Error('exactSVD: Jacobi sweeps did not converge');
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      const po = p * rows;
      for (let q = p + 1; q < n; q++) {
        const qo = q * rows;
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < rows; i++) { const x = G[po + i]!, y = G[qo + i]!; alpha += x * x; beta += y * y; gamma += x * y; }
        if (gamma === 0 || Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t), s = c * t;
        for (let i = 0; i < rows; i++) { const x = G[po + i]!, y = G[qo + i]!; G[po + i] = c * x - s * y; G[qo + i] = s * x + c * y; }
        const pv = p * n, qv = q * n;
        for (let i = 0; i < n; i++) { const x = Vc[pv + i]!, y = Vc[qv + i]!; Vc[pv + i] = c * x - s * y; Vc[qv + i] = s * x + c * y; }
      }
    }
    if (!rotated) break;
  }
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) { let s = 0; for (let i = 0; i < rows; i++) s += G[j * rows + i]! ** 2; norms[j] = Math.sqrt(s); }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => norms[y]! - norms[x]! || x - y);
  const S = Float64Array.from(order, (j) => norms[j]!);
  // U of the work matrix (rows×n), completing an orthonormal basis where σ = 0.
  const Uw = new Float64Array(rows * n);
  const V = new Float64Array(n * n);
  for (let c = 0; c < n; c++) {
    const j = order[c]!;
    for (let i = 0; i < n; i++) V[i * n + c] = Vc[j * n + i]!;
    const sj = norms[j]!;
    if (sj > 0) for (let i = 0; i < rows; i++) Uw[i * n + c] = G[j * rows + i]! / sj;
  }
  completeBasis(Uw, rows, n, S);
  let U: Mat64 = { rows, cols: n, data: Uw };
  if (Qa) U = mul(Qa, U);
  return fixSigns({ U, S, V: { rows: n, cols: n, data: V } }, false);
}

/** Replaces the columns of U whose σ is 0 (or negligible) by orthonormal completions. */
function completeBasis(U: Float64Array, rows: number, n: number, S: Float64Array): void {
  const small = (S[0] ?? 0) * 1e-300;
  let e = 0;
  for (let c = 0; c < n; c++) {
    if (S[c]! > small) continue;
    for (let attempt = 0; attempt < rows; attempt++, e++) {
      const v = new Float64Array(rows);
      v[e % rows] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (let d = 0; d < n; d++) {
          if (d === c || (S[d]! <= small && d > c)) continue;
          let dot = 0;
          for (let i = 0; i < rows; i++) dot += U[i * n + d]! * v[i]!;
          for (let i = 0; i < rows; i++) v[i] = v[i]! - dot * U[i * n + d]!;
        }
      }
      let nrm = 0;
      for (let i = 0; i < rows; i++) nrm += v[i]! * v[i]!;
      nrm = Math.sqrt(nrm);
      if (nrm > 0.5) { for (let i = 0; i < rows; i++) U[i * n + c] = v[i]! / nrm; e++; break; }
    }
  }
}

function mul(A: Mat64, B: Mat64): Mat64 {
  const m = A.rows, k = A.cols, n = B.cols;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const o = i * n;
    for (let p = 0; p < k; p++) {
      const a = A.data[i * k + p]!;
      if (a === 0) continue;
      const bo = p * n;
      for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + a * B.data[bo + j]!;
    }
  }
  return { rows: m, cols: n, data: out };
}

/** Sign convention: the largest-magnitude entry of each V column (or U when byU) is positive. */
export function fixSigns(f: DenseSVD, byU: boolean): DenseSVD {
  const r = f.S.length;
  const ref = byU ? f.U : f.V;
  for (let c = 0; c < r; c++) {
    let big = 0, sgn = 1;
    for (let i = 0; i < ref.rows; i++) { const x = ref.data[i * ref.cols + c]!; if (Math.abs(x) > big) { big = Math.abs(x); sgn = x < 0 ? -1 : 1; } }
    if (sgn < 0) {
      for (let i = 0; i < f.U.rows; i++) f.U.data[i * f.U.cols + c] = -f.U.data[i * f.U.cols + c]!;
      for (let i = 0; i < f.V.rows; i++) f.V.data[i * f.V.cols + c] = -f.V.data[i * f.V.cols + c]!;
    }
  }
  return f;
}
