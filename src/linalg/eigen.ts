/**
 * Dense symmetric eigensolver in fp64: Householder tridiagonalization followed by the
 * implicit QL algorithm (the classic tred2/tql2 pair, as in EISPACK and JAMA). O(n³), accurate
 * to ~n·ε·‖A‖ for every eigenvalue and eigenvectors to ε‖A‖/gap.
 */
import type { Mat64 } from './matrix.js';

export interface SymmetricEigen { values: Float64Array; vectors: Mat64 }

/**
 * Eigen-decomposition of a symmetric matrix (only symmetry-consistent input is meaningful;
 * the lower triangle is what is read). Values descending; `vectors` columns are the
 * matching orthonormal eigenvectors, each sign-fixed so its largest-magnitude entry is > 0.
 */
export function symmetricEigen(A: Mat64, opts: { vectors?: boolean } = {}): SymmetricEigen {
  const n = A.rows;
  if (A.cols !== n) throw new RangeError(`symmetricEigen: matrix is ${A.rows}×${A.cols}, not square`);
  const wantVectors = opts.vectors ?? true;
  // V[i][j] as a flat row-major array; symmetrize from the lower triangle.
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) { const x = A.data[i * n + j]!; V[i * n + j] = x; V[j * n + i] = x; }
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: { rows: 0, cols: 0, data: V } };
  const Vt = V; // symmetric input: V = Vᵀ, and tred2/tql2 work on the transposed layout
  tred2(n, Vt, d, e);
  tql2(n, Vt, d, e);
  // Sort descending with the vectors.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => d[b]! - d[a]! || a - b);
  const values = Float64Array.from(order, (i) => d[i]!);
  const vec = new Float64Array(wantVectors ? n * n : 0);
  if (wantVectors) {
    for (let c = 0; c < n; c++) {
      const src = order[c]!;
      let big = 0, sgn = 1;
      const so = src * n;
      for (let i = 0; i < n; i++) { const x = Vt[so + i]!; if (Math.abs(x) > big) { big = Math.abs(x); sgn = x < 0 ? -1 : 1; } }
      for (let i = 0; i < n; i++) vec[i * n + c] = sgn * Vt[so + i]!;
    }
  }
  return { values, vectors: { rows: wantVectors ? n : 0, cols: wantVectors ? n : 0, data: vec } };
}

/**
 * Householder reduction to tridiagonal form (d: diagonal, e: subdiagonal). Works on T = Vᵀ
 * (the EISPACK/JAMA tred2 with every V[r][c] read as T[c][r]) so that all inner loops run
 * along contiguous memory; on return the ROWS of T hold the accumulated transformation,
 * which is exactly the layout tql2 rotates.
 */
function tred2(n: number, T: Float64Array, d: Float64Array, e: Float64Array): void {
  for (let j = 0; j < n; j++) d[j] = T[j * n + (n - 1)]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0, h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) { d[j] = T[j * n + (i - 1)]!; T[j * n + i] = 0; T[i * n + j] = 0; }
    } else {
      for (let k = 0; k < i; k++) { d[k] = d[k]! / scale; h += d[k]! * d[k]!; }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        T[i * n + j] = f;
        const tj = j * n;
        g = e[j]! + T[tj + j]! * f;
        for (let k = j + 1; k < i; k++) { const t = T[tj + k]!; g += t * d[k]!; e[k] = e[k]! + t * f; }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) { e[j] = e[j]! / h; f += e[j]! * d[j]!; }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = e[j]! - hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!; g = e[j]!;
        const tj = j * n;
        for (let k = j; k < i; k++) T[tj + k] = T[tj + k]! - (f * e[k]! + g * d[k]!);
        d[j] = T[j * n + (i - 1)]!;
        T[j * n + i] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    T[i * n + (n - 1)] = T[i * n + i]!;
    T[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = T[(i + 1) * n + k]! / h;
      const ti = (i + 1) * n;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        const tj = j * n;
        for (let k = 0; k <= i; k++) g += T[ti + k]! * T[tj + k]!;
        for (let k = 0; k <= i; k++) T[tj + k] = T[tj + k]! - g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) T[(i + 1) * n + k] = 0;
  }
  for (let j = 0; j < n; j++) { d[j] = T[j * n + (n - 1)]!; T[j * n + (n - 1)] = 0; }
  T[(n - 1) * n + (n - 1)] = 1;
  e[0] = 0;
}

/** Implicit QL iterations on the tridiagonal matrix; eigenvectors accumulate into the ROWS of Vt. */
function tql2(n: number, Vt: Float64Array, d: Float64Array, e: Float64Array): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0, tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) { if (Math.abs(e[m]!) <= eps * tst1) break; m++; }
    if (m === n) m = n - 1;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > 100) throw new Error('symmetricEigen: QL iteration did not converge');
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.sqrt(p * p + 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i] = d[i]! - h;
        f += h;
        p = d[m]!;
        let c = 1, c2 = c, c3 = c;
        const el1 = e[l + 1]!;
        let s = 0, s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2; c2 = c; s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.sqrt(p * p + e[i]! * e[i]!); // Math.hypot is much slower in V8; no overflow at these scales
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          const r0 = i * n, r1 = r0 + n;
          let k = 0;
          for (; k + 1 < n; k += 2) {
            const x = Vt[r1 + k]!, y = Vt[r0 + k]!, x1 = Vt[r1 + k + 1]!, y1 = Vt[r0 + k + 1]!;
            Vt[r1 + k] = s * y + c * x;
            Vt[r0 + k] = c * y - s * x;
            Vt[r1 + k + 1] = s * y1 + c * x1;
            Vt[r0 + k + 1] = c * y1 - s * x1;
          }
          for (; k < n; k++) {
            const x = Vt[r1 + k]!, y = Vt[r0 + k]!;
            Vt[r1 + k] = s * y + c * x;
            Vt[r0 + k] = c * y - s * x;
          }
        }
        p = -s * s2 * c3 * el1 * e[l]! / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
}
