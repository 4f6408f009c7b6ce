/**
 * Top-k singular triplets of a large fp32 matrix by randomized block subspace iteration with
 * Rayleigh–Ritz, run until a RESIDUAL TOLERANCE is met (SPEC §3's accuracy trap), with an
 * optional warm start from a nearby matrix's subspace (a tuned W+ = W0 + small ΔW starts from
 * W0's basis and converges in a few iterations).
 *
 * Let s = min(m, n) and work with the "short side": X (s×l, orthonormal, l = k + oversample).
 * One iteration (two fast fp32 GEMMs, everything else fp64 and O(max(m,n)·l²)):
 *   Y = A·X                       (GEMM 1)
 *   G = YᵀY = Xᵀ AᵀA X, G = W Λ Wᵀ  → Ritz values σ_i = √λ_i, Ritz vectors v_i = X w_i,
 *                                    u_i = Y w_i / σ_i (so A v_i = σ_i u_i exactly)
 *   Z = Aᵀ·Y                      (GEMM 2; = AᵀA X, the next power step)
 *   residual r_i = ‖Aᵀu_i − σ_i v_i‖ = ‖Z w_i/σ_i − σ_i X w_i‖   (the only non-zero side)
 *   X ← orth(Z W)
 * Converged when, for the k wanted triplets, max r_i ≤ tol·σ_1 AND the Wedin-type bound on
 * the subspace error sin θ ≤ ‖R_k‖_F / (σ_k − σ_{k+1} − r_{k+1}) is ≤ angleTol. The second
 * test is what makes clustered spectra safe: when σ_k ≈ σ_{k+1} a small residual is not
 * enough, the iteration continues until the bound (or stagnation at the fp32 floor) says so.
 * The result reports the residual, the bound, iterations and whether it converged.
 */
import type { AnyMat, Mat, Mat64 } from './matrix.js';
import { randn64, toMat32, toMat64, transpose } from './matrix.js';
import { linalgBackend, matmul, matmul64Fast } from './gemm.js';
import { orthWorkspace, orthonormalizeFast } from './orth-fast.js';
import { symmetricEigen } from './eigen.js';
import { Rng } from '../util/random.js';

export interface TopKSVDOptions {
  /** Extra columns carried beyond k (default 16); convergence rate is (σ_{k+p+1}/σ_k)² per iteration. */
  oversample?: number;
  /** Relative residual tolerance: max_i ‖Aᵀu_i − σ_i v_i‖ ≤ tol·σ_1 (default 1e-6). */
  tol?: number;
  /** Bound on the top-k subspace error, in DEGREES (default 0.01°). */
  angleTol?: number;
  /** Iteration cap (default 300; each iteration is two GEMMs). */
  maxIter?: number;
  /** Seed of the Gaussian start (default 0). */
  seed?: number;
  /**
   * Start from a known basis, e.g. the base weight's `warmStartBasis` (or its U/V). Columns
   * beyond those given are filled with seeded Gaussian columns.
   */
  warmStart?: { V?: AnyMat; U?: AnyMat };
  /** Threads for the fast GEMM backend (default 1). */
  threads?: number;
  /**
   * 'auto' (default): 'gram' when min(m, n) ≤ 320, else 'randomized'. 'gram': eigen-
   * decomposition of the fp64 Gram matrix of the short side (AᵀA or AAᵀ, exact fp64 sums of
   * the fp32 entries) — accurate to ~ε₆₄·σ₁²/σ_i² and, for such small sides, faster than the
   * per-iteration overhead of subspace iteration; warm starts are then irrelevant (ignored).
   */
  method?: 'auto' | 'randomized' | 'gram';
  /** Iteration from which Aᵀ products use an explicit transposed copy of A (default 8;
   *  Infinity: never). Speed and memory only: the same sums (bit-identical for l > 64). */
  transposeAfter?: number;
}

/** Iteration from which topKSVD multiplies by an explicit transposed copy of A (see there). */
const TRANSPOSE_AFTER = 8;

/** Short sides up to this use the Gram eigen-decomposition under method 'auto'. */
export const GRAM_METHOD_MAX_SIDE = 320;

export interface TopKSVD {
  /** m×k left singular vectors (orthonormal columns). */
  U: Mat64;
  /** k singular values, descending. */
  S: Float64Array;
  /** n×k right singular vectors (orthonormal columns). */
  V: Mat64;
  /** Subspace iterations run (each = two GEMMs with an l-column panel). */
  iterations: number;
  /** max_{i≤k} ‖Aᵀu_i − σ_i v_i‖₂ / σ_1 at return (A v_i = σ_i u_i holds by construction). */
  residual: number;
  /** Upper bound (degrees) on the angle between the returned and the exact top-k subspaces
   *  (Wedin; uses the estimated gap σ_k − σ_{k+1}); Infinity when the gap is not resolved. */
  angleErrorBound: number;
  /** Whether tol and angleTol were both met (false: maxIter reached or stagnated at the fp32 floor). */
  converged: boolean;
  /** Iterations (1-based) at which Rayleigh–Ritz + residual checks ran; the others were plain
   *  power steps. The numpy baseline replays exactly this schedule. */
  checkedAt: number[];
  method: string;
  params: Record<string, number | string | boolean>;
  /** The full l-column Ritz basis of the iterated side; pass as `warmStart` for a nearby matrix. */
  warmStartBasis: { U?: Mat64; V?: Mat64 };
}

const DEG = Math.PI / 180;

/** Top-k SVD of A (m×n fp32). k is capped at min(m, n). */
export async function topKSVD(A: Mat, k: number, opts: TopKSVDOptions = {}): Promise<TopKSVD> {
  const m = A.rows, n = A.cols;
  const s = Math.min(m, n);
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`topKSVD: k must be a positive integer, got ${k}`);
  k = Math.min(k, s);
  const oversample = opts.oversample ?? 16;
  const l = Math.min(s, k + Math.max(0, Math.floor(oversample)));
  const tol = opts.tol ?? 1e-6;
  const angleTol = opts.angleTol ?? 0.01;
  const maxIter = opts.maxIter ?? 300;
  const seed = opts.seed ?? 0;
  const threads = opts.threads ?? 1;
  const method = opts.method ?? 'auto';
  if (method === 'gram' || (method === 'auto' && s <= GRAM_METHOD_MAX_SIDE)) {
    return gramTopK(A, k, l, { tol, angleTol, maxIter, seed, threads, warm: !!(opts.warmStart?.U ?? opts.warmStart?.V) });
  }
  // Short side: iterate on X ∈ R^{s×l}. tall (m ≥ n): X spans right vectors, A·X = A X.
  // wide: X spans left vectors and the roles of A and Aᵀ swap (trans flags, no copy).
  const tall = m >= n;
  const L = tall ? m : n;
  // Output panels reused across iterations (each product's result is consumed before the next).
  const fwdOut = new Float32Array(L * l), bwdOut = new Float32Array(s * l);
  // One of the two products per iteration is Aᵀ·(panel). MLAS runs it ~15–40% slower through
  // its transA path (it re-transposes panels of A on every call) than a plain product with an
  // explicit Aᵀ. Both compute the same sums; for panels wider than 64 columns (the default
  // l = 80) MLAS also blocks the inner dimension alike, so the products are bit-identical
  // (otherwise they differ in fp32 rounding only). So once a solve has run `transposeAfter`
  // iterations — enough that one transpose (~4 GEMMs' worth of time) is likely to pay — it
  // keeps a transposed copy of A (one more weight-sized fp32 buffer during the solve) and uses
  // the plain product from then on.
  let At: Mat | null = null;
  const transposeAfter = opts.transposeAfter ?? TRANSPOSE_AFTER;
  const byAt = (P: Mat, out: Float32Array | undefined): Promise<Mat> =>
    At ? matmul(At, P, { threads, out }) : matmul(A, P, { transA: true, threads, out });
  const fwd = (X: Mat): Promise<Mat> => {
    const out = X.cols === l ? fwdOut : undefined;
    return tall ? matmul(A, X, { threads, out }) : byAt(X, out);
  };
  const bwd = (Y: Mat): Promise<Mat> => {
    const out = Y.cols === l ? bwdOut : undefined;
    return tall ? byAt(Y, out) : matmul(A, Y, { threads, out });
  };

  // ---- start basis ----
  const rng = new Rng(seed);
  const sideWarm = tall ? opts.warmStart?.V : opts.warmStart?.U;
  const otherWarm = tall ? opts.warmStart?.U : opts.warmStart?.V;
  let X0: Mat64;
  if (sideWarm) {
    if (sideWarm.rows !== s) throw new RangeError(`topKSVD: warm start has ${sideWarm.rows} rows, expected ${s}`);
    X0 = fillColumns(toMat64(sideWarm), l, rng);
  } else if (otherWarm) {
    if (otherWarm.rows !== L) throw new RangeError(`topKSVD: warm start has ${otherWarm.rows} rows, expected ${L}`);
    const Wl = fillColumns(toMat64(otherWarm), l, rng);
    X0 = toMat64(await bwd(to32(Wl)));
  } else {
    X0 = randn64(s, l, rng);
  }
  // Reused across iterations (see OrthWorkspace): the orthonormal block X, its fp32 copy for
  // the GEMM, and the Ritz products ZW and XW.
  const orthWs = orthWorkspace(s, l);
  const x32: Mat = { rows: s, cols: l, data: new Float32Array(s * l) };
  const zwBuf = new Float64Array(s * l), xwBuf = new Float64Array(s * l);
  let X = await orthonormalizeFast(X0, threads, orthWs);

  let iterations = 0;
  let converged = false;
  const checks: { it: number; rel: number }[] = [];
  const checkedAt: number[] = [];
  let nextCheck = 1;
  let best: { sigma: Float64Array; W: Mat64; X: Mat64; Y: Mat64; res: number; bound: number } | null = null;
  const f64 = { threads };
  const Ybuf = new Float64Array(L * l), Zbuf = new Float64Array(s * l);
  for (;;) {
    iterations++;
    if (iterations === transposeAfter) At = transpose(A);
    const Y32 = await fwd(into32(X, x32));                         // L×l fp32
    if (iterations < nextCheck && iterations < maxIter) {
      // A plain power step between convergence checks: no Rayleigh–Ritz, no residuals.
      Zbuf.set((await bwd(Y32)).data);
      X = await orthonormalizeFast({ rows: s, cols: l, data: Zbuf }, threads, orthWs);
      continue;
    }
    checkedAt.push(iterations);
    Ybuf.set(Y32.data);                                             // widen into a reused buffer
    const Y: Mat64 = { rows: L, cols: l, data: Ybuf };
    const G = await matmul64Fast(Y, Y, { transA: true, threads }); // l×l = Xᵀ AᵀA X
    const eig = symmetricEigen(G);
    const sigma = Float64Array.from(eig.values, (x) => Math.sqrt(Math.max(0, x)));
    if (!Number.isFinite(G.data.reduce((a, x) => a + x, 0))) throw new RangeError('topKSVD: matrix has NaN or Inf entries');
    const Wm = eig.vectors;                                         // l×l
    Zbuf.set((await bwd(Y32)).data);
    const Z: Mat64 = { rows: s, cols: l, data: Zbuf };              // s×l = AᵀA X
    const ZW = await matmul64Fast(Z, Wm, { threads, out64: zwBuf });
    const XW = await matmul64Fast(X, Wm, { threads, out64: xwBuf }); // becomes best.X: xwBuf is only rewritten by the next check, which replaces best
    // Residuals of the first min(k+1, l) Ritz triplets.
    const nr = Math.min(k + 1, l);
    const res = new Float64Array(nr);
    const zw = ZW.data, xw = XW.data;
    for (let r = 0; r < s; r++) {
      const o = r * l;
      for (let i = 0; i < nr; i++) {
        const si = sigma[i]!;
        const d = si > 0 ? zw[o + i]! / si - si * xw[o + i]! : zw[o + i]!;
        res[i] = res[i]! + d * d;
      }
    }
    for (let i = 0; i < nr; i++) res[i] = Math.sqrt(res[i]!);
    const s1 = sigma[0]! > 0 ? sigma[0]! : 1;
    let rmax = 0, rk2 = 0;
    for (let i = 0; i < k; i++) { rmax = Math.max(rmax, res[i]!); rk2 += res[i]! ** 2; }
    const rel = rmax / s1;
    let bound: number;
    if (k >= s) bound = 0;                      // the whole space: nothing to miss
    else if (k >= l) bound = Infinity;          // no Ritz value beyond k to estimate the gap
    else {
      const gap = sigma[k - 1]! - sigma[k]! - res[k]!;
      bound = gap > 0 ? Math.asin(Math.min(1, Math.sqrt(rk2) / gap)) / DEG : Infinity;
      if (rk2 === 0) bound = 0;
    }
    best = { sigma, W: Wm, X: XW, Y, res: rel, bound };
    if (rel <= tol && bound <= angleTol) { converged = true; break; }
    // Stagnation (the fp32 GEMM floor): under 5% progress over the last 8 iterations.
    const old = checks.filter((c) => c.it <= iterations - 8);
    if (old.length > 0 && rel > 0.95 * Math.min(...old.map((c) => c.rel))) break;
    if (iterations >= maxIter) break;
    // Schedule the next check from the observed convergence rate: Rayleigh–Ritz and residuals
    // cost O(l³ + n·l²) of JS per check, so checks are skipped while the residual is
    // predictably far from the target (at most 8 iterations ahead, 60% of the prediction).
    const prev = checks[checks.length - 1];
    checks.push({ it: iterations, rel });
    let skip = 1;
    if (prev && rel > 0 && prev.rel > 0) {
      const rho = (rel / prev.rel) ** (1 / (iterations - prev.it));
      const need = Math.max(rel / tol, Number.isFinite(bound) ? bound / angleTol : 1);
      if (rho < 0.98 && need > 1) skip = Math.min(8, Math.max(1, Math.floor(0.6 * Math.log(need) / -Math.log(rho))));
    }
    nextCheck = iterations + skip;
    // Next block: span(ZW) with columns scaled by 1/σ² (≈ the Ritz vectors; better conditioned).
    const lam = new Float64Array(l);
    for (let i = 0; i < l; i++) { const x = sigma[i]! * sigma[i]!; lam[i] = x > 0 ? x : 1; } // x/1 = x exactly
    for (let r = 0; r < s; r++) {
      const o = r * l;
      for (let i = 0; i < l; i++) zw[o + i] = zw[o + i]! / lam[i]!;
    }
    X = await orthonormalizeFast(ZW, threads, orthWs);
  }
  const b = best!;
  // Final triplets from the last Ritz step: V = X W (already formed), U = Y W_k Σ_k⁻¹.
  const Sk = b.sigma.slice(0, k);
  const V = mat64cols(b.X, k);
  const Wk = new Float64Array(l * k);
  for (let i = 0; i < l; i++) for (let j = 0; j < k; j++) Wk[i * k + j] = b.W.data[i * l + j]! / (Sk[j]! > 0 ? Sk[j]! : 1);
  const U = await matmul64Fast(b.Y, { rows: l, cols: k, data: Wk }, f64);
  const ritzAll = b.X;
  const [Uo, Vo] = tall ? [U, V] : [V, U];
  fixSignsBy(Vo, Uo); // same convention as exactSVD: largest-magnitude entry of each v_i > 0
  return {
    U: Uo, S: Sk, V: Vo, iterations, residual: b.res, angleErrorBound: b.bound, converged,
    method: 'randomized-subspace-iteration-rayleigh-ritz',
    checkedAt,
    params: {
      k, oversample: l - k, tol, angleTol, maxIter, seed, warmStart: !!(sideWarm ?? otherWarm),
      backend: await linalgBackend(), threads,
    },
    warmStartBasis: tall ? { V: ritzAll } : { U: ritzAll },
  };
}

function to32(a: Mat64): Mat { return toMat32(a); }

/** fp32 copy of `a` into `buf` when the shapes match (else a new matrix). */
function into32(a: Mat64, buf: Mat): Mat {
  if (a.rows !== buf.rows || a.cols !== buf.cols) return toMat32(a);
  buf.data.set(a.data);
  return buf;
}

/**
 * Top-k triplets from the fp64 Gram matrix of the short side: G = AᵀA (tall) or AAᵀ (wide),
 * G = X Λ Xᵀ, σ = √λ, long-side vectors = A·x_i/σ_i (fp64 dgemm). Residuals are measured,
 * not assumed.
 */
async function gramTopK(A: Mat, k: number, l: number,
  o: { tol: number; angleTol: number; maxIter: number; seed: number; threads: number; warm: boolean }): Promise<TopKSVD> {
  const m = A.rows, n = A.cols, tall = m >= n, s = Math.min(m, n);
  const A64 = toMat64(A);
  const G = await matmul64Fast(A64, A64, tall ? { transA: true, threads: o.threads } : { transB: true, threads: o.threads });
  if (!Number.isFinite(G.data.reduce((a, x) => a + x, 0))) throw new RangeError('topKSVD: matrix has NaN or Inf entries');
  const eig = symmetricEigen(G);
  const sigma = Float64Array.from(eig.values, (x) => Math.sqrt(Math.max(0, x)));
  const Xl = mat64cols(eig.vectors, l);                             // s×l short-side vectors
  // Long side: A·x_i (tall) or Aᵀ·x_i (wide), divided by σ_i.
  const Ylong = await matmul64Fast(A64, Xl, { transA: !tall, threads: o.threads });
  const Lr = Ylong.rows;
  const Uk = new Float64Array(Lr * k);
  for (let r = 0; r < Lr; r++) for (let j = 0; j < k; j++) Uk[r * k + j] = Ylong.data[r * l + j]! / (sigma[j]! > 0 ? sigma[j]! : 1);
  const longK: Mat64 = { rows: Lr, cols: k, data: Uk };
  // Residual of the other side: ‖Aᵀu_i − σ_i x_i‖ (tall) / ‖A u_i − σ_i x_i‖ (wide).
  const back = await matmul64Fast(A64, longK, { transA: tall, threads: o.threads });
  const nr = Math.min(k + 1, l);
  let rmax = 0, rk2 = 0;
  const res = new Float64Array(nr);
  for (let i = 0; i < k; i++) {
    let acc = 0;
    for (let r = 0; r < s; r++) { const d = back.data[r * k + i]! - sigma[i]! * Xl.data[r * l + i]!; acc += d * d; }
    res[i] = Math.sqrt(acc); rmax = Math.max(rmax, res[i]!); rk2 += res[i]! ** 2;
  }
  const s1 = sigma[0]! > 0 ? sigma[0]! : 1;
  let bound = 0;
  if (k < s && rk2 > 0) {
    const gap = sigma[k - 1]! - sigma[k]!;
    bound = gap > 0 ? Math.asin(Math.min(1, Math.sqrt(rk2) / gap)) / DEG : Infinity;
  }
  const rel = rmax / s1;
  const shortK = mat64cols(Xl, k);
  const [U, V] = tall ? [longK, shortK] : [shortK, longK];
  fixSignsBy(V, U);
  return {
    U, S: sigma.slice(0, k), V, iterations: 0, residual: rel, angleErrorBound: bound,
    converged: rel <= o.tol && bound <= o.angleTol, checkedAt: [],
    method: 'gram-eigen-fp64',
    params: {
      k, oversample: l - k, tol: o.tol, angleTol: o.angleTol, maxIter: o.maxIter, seed: o.seed, warmStart: o.warm,
      backend: await linalgBackend(), threads: o.threads,
    },
    warmStartBasis: tall ? { V: Xl } : { U: Xl },
  };
}

/** First `cols` columns of a, then seeded Gaussian columns up to `l`. */
function fillColumns(a: Mat64, l: number, rng: Rng): Mat64 {
  const out = new Float64Array(a.rows * l);
  const c = Math.min(a.cols, l);
  for (let i = 0; i < a.rows; i++) {
    for (let j = 0; j < c; j++) out[i * l + j] = a.data[i * a.cols + j]!;
  }
  for (let i = 0; i < a.rows; i++) for (let j = c; j < l; j++) out[i * l + j] = rng.normal();
  return { rows: a.rows, cols: l, data: out };
}




function mat64cols(a: Mat64, k: number): Mat64 {
  if (a.cols === k) return a;
  const out = new Float64Array(a.rows * k);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < k; j++) out[i * k + j] = a.data[i * a.cols + j]!;
  return { rows: a.rows, cols: k, data: out };
}

/** Deterministic signs: the largest-magnitude entry of each column of `ref` positive (flip `other` too). */
function fixSignsBy(ref: Mat64, other: Mat64): void {
  for (let c = 0; c < ref.cols; c++) {
    let big = 0, sgn = 1;
    for (let i = 0; i < ref.rows; i++) { const x = ref.data[i * ref.cols + c]!; if (Math.abs(x) > big) { big = Math.abs(x); sgn = x < 0 ? -1 : 1; } }
    if (sgn < 0) {
      for (let i = 0; i < ref.rows; i++) ref.data[i * ref.cols + c] = -ref.data[i * ref.cols + c]!;
      for (let i = 0; i < other.rows; i++) other.data[i * other.cols + c] = -other.data[i * other.cols + c]!;
    }
  }
}

