/**
 * rlvr-lens numeric core (`src/linalg`). READ THIS HEADER: it is the contract for the probes
 * (spectrum, principal angles, principal masks, theory bounds, cache) and the adapters.
 *
 * Storage: row-major dense matrices, element (i, j) at data[i*cols + j].
 *   Mat   = { rows, cols, data: Float32Array }  — weights (what checkpoints decode to), GEMM input
 *   Mat64 = { rows, cols, data: Float64Array }  — factors where accuracy matters
 *
 * GEMM
 *   matmul(A, B, { transA?, transB?, threads?, backend? }): Promise<Mat>
 *       C = op(A)·op(B) in fp32 on the fast backend (onnxruntime-node MLAS Gemm, no transpose
 *       copies, no output copy); falls back to the pure-TS kernel if ORT does not load.
 *       env RLVR_LINALG=js forces the fallback. threads = ORT intra-op threads (default 1).
 *   matmulSync(A, B, { transA?, transB? }): Mat     pure TS, cache-blocked, fp64 accumulation
 *   matmul64(A, B, opts): Mat64                    pure TS fp64 (small factors only: ~1 GF/s)
 *   matmul64Fast(A: Mat64, B: Mat64, { transA?, transB?, threads? }): Promise<Mat64>
 *       fp64 on the fast backend (ORT Gemm double = MLAS dgemm, ~40–50 GF/s, 30–50× matmul64).
 *       USE THIS for Gram matrices WᵀW of real weights, Ritz rotations, anything > ~1e7 flops.
 *   reconstructFast(U, S, V, { k?, precision?: 'fp32' | 'fp64', threads? }): Promise<Mat | Mat64>
 *       rank-k U_k Σ_k V_kᵀ in one GEMM (fp32 default) — principal-weight scores |W0^(k)|.
 *   linalgBackend(): Promise<'ort' | 'js'>          what matmul will use (record it in reports)
 *
 * Decompositions (all fp64)
 *   qrThin(A: Mat64): { Q, R }            Householder; Q m×r, R r×n, r = min(m,n), diag(R) ≥ 0
 *   symmetricEigen(A: Mat64, { vectors? }): { values, vectors }   descending; vectors are columns.
 *       tred2/tql2 in JS, O(n³): n = 80 ~2 ms, n = 1536 ~30–60 s (vectors) — keep n small.
 *   exactSVD(A: Mat | Mat64): { U, S, V } thin (r = min(m,n)), descending, one-sided Jacobi
 *       (after QR when tall). Slow beyond ~1000 columns (O(n³) per sweep in JS): it is the
 *       reference / `--exact` path, not the default.
 *   topKSVD(A: Mat, k, opts): Promise<TopKSVD>    k capped at min(m,n)
 *       opts: oversample (16), tol (1e-6, relative residual), angleTol (0.01°, bound on the
 *       subspace error), maxIter (300), seed (0), warmStart { V? | U? }, threads (1),
 *       method ('auto' | 'randomized' | 'gram'; auto = 'gram' when min(m,n) ≤ 320, e.g. the
 *       256×1536 k/v projections: fp64 Gram eigen-decomposition, near-exact and faster there).
 *       Returns { U (m×k), S (k), V (n×k), iterations, residual, angleErrorBound (deg),
 *       converged, method, params, warmStartBasis, checkedAt }. RECORD method + params +
 *       residual + angleErrorBound + converged in reports. Randomized block subspace iteration with
 *       Rayleigh–Ritz, stopped on residual AND a Wedin bound using the estimated gap
 *       σ_k − σ_{k+1} (so clustered spectra are handled); stops early with converged=false
 *       when the residual stagnates at the fp32 GEMM floor — report angleErrorBound then.
 *       Rayleigh–Ritz checks run on an adaptive schedule (checkedAt) between plain power steps.
 *       WARM START: keep the base weight's `warmStartBasis` (l = k+oversample columns) and pass
 *       it as `warmStart` for every tuned weight of the same tensor: topKSVD(Wplus, k,
 *       { warmStart: base.warmStartBasis }). Deterministic: same input + seed → bitwise the
 *       same output, whatever `threads` is (MLAS never splits the inner dimension).
 *       Memory: a few L×(k+p) panels (fp32 + fp64) beyond A itself; the Gram path adds an fp64
 *       copy of A (only for min(m,n) ≤ 320).
 *   spectralNorm(A: Mat | LinearOperator, opts): Promise<SpectralNormResult>
 *       { norm, iterations, residual, converged, u, v }; Golub–Kahan–Lanczos with full
 *       reorthogonalization (opts: tol 1e-6 relative residual, maxIter 300, seed, threads);
 *       a sparse RL-like ΔW of 8960×1536 converges in ~80 steps (~1.5 s; block power: 23 s).
 *       For ‖ΔW‖₂: dW = subtract(Wplus, W0) once, then frobeniusNorm(dW)
 *       and (await spectralNorm(dW)).norm. differenceOperator(P, Q) avoids forming ΔW.
 *   principalAngles(A: Mat64, B: Mat64): Float64Array   degrees, ascending, min(kA,kB) angles,
 *       between the column spaces of orthonormal A and B (n×k each); sines for small angles,
 *       cosines for large, fp64. For U: principalAngles(svd0.U, svd1.U); for V likewise.
 *       Pure JS (Jacobi SVD of the n×k residual): ~0.3–0.8 s at n = 8960, k = 64 — the reference.
 *   principalAnglesFast(A, B, { threads? }): Promise<Float64Array>   same answer (to ~1e-6°)
 *       via ORT dgemm + k×k Gram eigenvalues, ~30× faster (~10–25 ms): USE THIS in probes.
 *
 * Helpers: mat, mat64, toMat64, toMat32, transpose, sliceCols, hcat64, identity64, randn,
 *   randn64 (seeded Rng), subtract, frobeniusNorm, reconstruct(U, S, V, k) (rank-k, fp64).
 */
export type { Mat, Mat64, AnyMat } from './matrix.js';
export {
  mat, mat64, isMat64, toMat64, toMat32, identity64, transpose, sliceCols, hcat64, randn, randn64,
  subtract, frobeniusNorm, reconstruct,
} from './matrix.js';
export type { MatmulOptions, AsyncMatmulOptions, LinalgBackend } from './gemm.js';
export { matmul, matmulSync, matmul64, matmul64Fast, reconstructFast, linalgBackend } from './gemm.js';
export type { QR } from './qr.js';
export { qrThin } from './qr.js';
export type { SymmetricEigen } from './eigen.js';
export { symmetricEigen } from './eigen.js';
export type { DenseSVD } from './svd-dense.js';
export { exactSVD } from './svd-dense.js';
export type { TopKSVD, TopKSVDOptions } from './svd-randomized.js';
export { topKSVD, GRAM_METHOD_MAX_SIDE } from './svd-randomized.js';
export type { LinearOperator, SpectralNormOptions, SpectralNormResult } from './norms.js';
export { spectralNorm, matOperator, differenceOperator } from './norms.js';
export { principalAngles, principalAnglesFast } from './angles.js';
