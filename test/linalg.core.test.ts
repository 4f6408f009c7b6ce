/**
 * Numeric core, dense parts: GEMM (both backends, odd shapes, transposes), Householder QR,
 * symmetric eigensolver and exact SVD against constructed decompositions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Mat, type Mat64, exactSVD, mat64, matmul, matmul64, matmulSync, qrThin, randn, randn64,
  reconstruct, symmetricEigen, transpose, toMat64,
} from '../src/linalg/index.js';
import { matmul64Fast } from '../src/linalg/gemm.js';
import { gemmModelBytes } from '../src/linalg/ort-backend.js';
import { Rng } from '../src/util/random.js';

/** Reference op(A)·op(B) in fp64, triple loop. */
function naive(A: Mat | Mat64, B: Mat | Mat64, ta: boolean, tb: boolean): Float64Array {
  const m = ta ? A.cols : A.rows, k = ta ? A.rows : A.cols, n = tb ? B.rows : B.cols;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) {
      const a = ta ? A.data[p * A.cols + i]! : A.data[i * A.cols + p]!;
      const b = tb ? B.data[j * B.cols + p]! : B.data[p * B.cols + j]!;
      s += a * b;
    }
    out[i * n + j] = s;
  }
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

function orthonormal(n: number, k: number, rng: Rng): Mat64 { return qrThin(randn64(n, k, rng)).Q; }

function orthError(Q: Mat64): number {
  const G = matmul64(Q, Q, { transA: true });
  let e = 0;
  for (let i = 0; i < G.rows; i++) for (let j = 0; j < G.cols; j++) e = Math.max(e, Math.abs(G.data[i * G.cols + j]! - (i === j ? 1 : 0)));
  return e;
}

const SHAPES: [number, number, number][] = [[1, 1, 1], [7, 13, 5], [33, 65, 17], [2, 300, 3], [70, 1, 9], [129, 257, 31]];

test('GEMM: both backends match a naive fp64 product on odd shapes and all transposes', async () => {
  const rng = new Rng(1);
  for (const [m, k, n] of SHAPES) {
    for (const ta of [false, true]) for (const tb of [false, true]) {
      const A = ta ? randn(k, m, rng) : randn(m, k, rng);
      const B = tb ? randn(n, k, rng) : randn(k, n, rng);
      const ref = naive(A, B, ta, tb);
      const tol = 1e-5 * Math.sqrt(k) * 4;
      const js = matmulSync(A, B, { transA: ta, transB: tb });
      assert.deepEqual([js.rows, js.cols], [m, n]);
      assert.ok(maxAbsDiff(js.data, ref) <= tol, `js ${m}×${k}×${n} ${ta}/${tb}`);
      const fast = await matmul(A, B, { transA: ta, transB: tb });
      assert.deepEqual([fast.rows, fast.cols], [m, n]);
      assert.ok(maxAbsDiff(fast.data, ref) <= tol, `fast ${m}×${k}×${n} ${ta}/${tb}: ${maxAbsDiff(fast.data, ref)}`);
      const forced = await matmul(A, B, { transA: ta, transB: tb, backend: 'js' });
      assert.deepEqual(forced.data, js.data);
      const A64 = toMat64(A), B64 = toMat64(B);
      const f64 = await matmul64Fast(A64, B64, { transA: ta, transB: tb });
      assert.ok(maxAbsDiff(f64.data, ref) <= 1e-12 * k, `fp64 ${m}×${k}×${n}`);
      assert.ok(maxAbsDiff(matmul64(A64, B64, { transA: ta, transB: tb }).data, ref) <= 1e-12 * k);
    }
  }
});

test('GEMM: the JS kernel is exact on small integers, 2 threads give the same product, shapes are checked', async () => {
  const rng = new Rng(2);
  const A = randn(300, 200, rng), B = randn(200, 40, rng);
  for (const x of [A.data, B.data]) for (let i = 0; i < x.length; i++) x[i] = Math.round(x[i]! * 4);
  const ref = naive(A, B, false, false);
  assert.equal(maxAbsDiff(matmulSync(A, B).data, ref), 0); // integer sums < 2^24 are exact
  assert.equal(maxAbsDiff((await matmul(A, B, { threads: 2 })).data, ref), 0);
  assert.throws(() => matmulSync(A, A), /inner dimensions/);
  await assert.rejects(matmul(A, A), /inner dimensions/);
});

test('GEMM: tall products run in row blocks with the same bits as one call, into a given out buffer', async () => {
  const { rowBlock } = await import('../src/linalg/gemm.js');
  const rng = new Rng(4);
  const m = 1300, k = 37, n = 200;
  assert.ok(rowBlock(m, n) < m, 'this shape is split');
  for (const tb of [false, true]) {
    const A = randn(m, k, rng), B = tb ? randn(n, k, rng) : randn(k, n, rng);
    const out = new Float32Array(m * n).fill(NaN);
    const blocked = await matmul(A, B, { transB: tb, out });
    assert.equal(blocked.data, out);
    // one call with 4 threads (blocks of 1024 rows: not split here); per entry MLAS computes
    // the same sum in the same order whatever the split and thread count
    assert.equal(rowBlock(m, n, 4), m);
    const whole = await matmul(A, B, { transB: tb, threads: 4 });
    assert.deepEqual(blocked.data, whole.data);
    assert.deepEqual((await matmul(A, B, { transB: tb, threads: 2 })).data, whole.data);
    assert.ok(maxAbsDiff(blocked.data, naive(A, B, false, tb)) <= 1e-5 * Math.sqrt(k) * 4);
  }
});

test('GEMM: env RLVR_LINALG=js forces the pure-TS backend', async () => {
  const rng = new Rng(3);
  const A = randn(17, 9, rng), B = randn(9, 4, rng);
  const prev = process.env['RLVR_LINALG'];
  process.env['RLVR_LINALG'] = 'js';
  try {
    const { linalgBackend } = await import('../src/linalg/gemm.js');
    assert.equal(await linalgBackend(), 'js');
    assert.deepEqual((await matmul(A, B)).data, matmulSync(A, B).data);
  } finally {
    if (prev === undefined) delete process.env['RLVR_LINALG']; else process.env['RLVR_LINALG'] = prev;
  }
});

test('the fast backend is in use whenever onnxruntime-node is installed (a silent fallback would be 30× slower)', async () => {
  const { createRequire } = await import('node:module');
  const { linalgBackend } = await import('../src/linalg/gemm.js');
  let installed = true;
  try { createRequire(import.meta.url).resolve('onnxruntime-node'); } catch { installed = false; }
  if (process.env['RLVR_LINALG'] === 'js' || !installed) return;
  assert.equal(await linalgBackend(), 'ort');
});

test('ONNX model bytes: a well-formed Gemm graph (magic fields present)', () => {
  const b = gemmModelBytes(true, false);
  const text = new TextDecoder('latin1').decode(b);
  for (const s of ['Gemm', 'transA', 'transB', 'rlvr-lens']) assert.ok(text.includes(s), s);
  assert.equal(b[0], 0x08); // field 1 (ir_version), varint
});

test('qrThin: orthonormal Q, upper-triangular R with diag ≥ 0, QR = A (incl. rank-deficient, wide, empty)', () => {
  const rng = new Rng(4);
  const cases: Mat64[] = [randn64(50, 20, rng), randn64(20, 20, rng), randn64(7, 12, rng), randn64(1, 1, rng)];
  const def = randn64(40, 6, rng);
  for (let i = 0; i < 40; i++) { def.data[i * 6 + 3] = 2 * def.data[i * 6 + 1]!; def.data[i * 6 + 5] = 0; }
  cases.push(def);
  for (const A of cases) {
    const { Q, R } = qrThin(A);
    const r = Math.min(A.rows, A.cols);
    assert.deepEqual([Q.rows, Q.cols, R.rows, R.cols], [A.rows, r, r, A.cols]);
    for (let i = 0; i < r; i++) {
      assert.ok(R.data[i * R.cols + i]! >= 0);
      for (let j = 0; j < Math.min(i, A.cols); j++) assert.equal(R.data[i * R.cols + j], 0);
    }
    assert.ok(maxAbsDiff(matmul64(Q, R).data, A.data) < 1e-12, 'QR = A');
    // Rank-deficient columns still give an orthonormal Q (the reflector is skipped, e_j kept).
    assert.ok(orthError(Q) < 1e-12, `QᵀQ = I (${A.rows}×${A.cols})`);
  }
  const e = qrThin(mat64(5, 0));
  assert.deepEqual([e.Q.cols, e.R.rows], [0, 0]);
});

/** Symmetric Q diag(λ) Qᵀ with the given eigenvalues. */
function symmetricWith(values: number[], rng: Rng): Mat64 {
  const n = values.length;
  const Q = orthonormal(n, n, rng);
  const A = mat64(n, n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let t = 0; t < n; t++) s += Q.data[i * n + t]! * values[t]! * Q.data[j * n + t]!;
    A.data[i * n + j] = s;
  }
  return A;
}

test('symmetricEigen: clustered, repeated, negative and decaying spectra', () => {
  const rng = new Rng(5);
  const spectra = [
    [5, 5, 5, 3, 3 + 1e-9, 1, -2, -2, 0, 0],
    Array.from({ length: 40 }, (_, i) => 0.8 ** i),
    Array.from({ length: 25 }, (_, i) => (i < 10 ? 10 + 1e-6 * i : i < 20 ? 1 + 1e-4 * i : -i)),
    [7],
  ];
  for (const values of spectra) {
    const A = symmetricWith(values, rng);
    const { values: got, vectors } = symmetricEigen(A);
    const want = [...values].sort((a, b) => b - a);
    const scale = Math.max(...values.map(Math.abs));
    assert.ok(maxAbsDiff(got, want) < 1e-12 * scale * values.length, `values ${values.length}`);
    assert.ok(orthError(vectors) < 1e-12);
    const AV = matmul64(A, vectors);
    for (let c = 0; c < values.length; c++) for (let i = 0; i < values.length; i++) {
      assert.ok(Math.abs(AV.data[i * values.length + c]! - got[c]! * vectors.data[i * values.length + c]!) < 1e-11 * scale);
    }
  }
  assert.throws(() => symmetricEigen(mat64(2, 3)), /not square/);
});

/** U Σ Vᵀ with orthonormal U (m×r), V (n×r) and the given σ. */
function constructed(m: number, n: number, sigma: number[], rng: Rng): { A: Mat64; U: Mat64; V: Mat64 } {
  const r = sigma.length;
  const U = orthonormal(m, r, rng), V = orthonormal(n, r, rng);
  return { A: reconstruct(U, sigma, V, r), U, V };
}

test('exactSVD: constructed U Σ Vᵀ with clustered, decaying and zero singular values, tall and wide', () => {
  const rng = new Rng(6);
  const spectra: [number, number, number[]][] = [
    [60, 40, Array.from({ length: 40 }, (_, i) => 0.85 ** i)],
    [40, 60, Array.from({ length: 40 }, (_, i) => (i < 5 ? 10 - 1e-7 * i : i < 30 ? 3 - 1e-3 * i : 0))],
    [30, 30, Array.from({ length: 30 }, (_, i) => 30 - i)],
  ];
  for (const [m, n, sigma] of spectra) {
    const { A } = constructed(m, n, sigma, rng);
    const { U, S, V } = exactSVD(A);
    const r = Math.min(m, n);
    assert.deepEqual([U.rows, U.cols, S.length, V.rows, V.cols], [m, r, r, n, r]);
    const want = [...sigma].sort((a, b) => b - a);
    assert.ok(maxAbsDiff(S, want) < 1e-13 * want[0]! * 10, `σ ${m}×${n}`);
    for (let i = 1; i < r; i++) assert.ok(S[i - 1]! >= S[i]!);
    assert.ok(orthError(U) < 1e-12 && orthError(V) < 1e-12, 'orthonormal factors (zero σ completed)');
    assert.ok(maxAbsDiff(reconstruct(U, S, V).data, A.data) < 1e-13 * want[0]! * 10, 'U Σ Vᵀ = A');
  }
  // Same answer for A and Aᵀ (roles of U and V swap).
  const { A } = constructed(20, 12, Array.from({ length: 12 }, (_, i) => 12 - i), rng);
  const a = exactSVD(A), b = exactSVD(transpose(A));
  assert.ok(maxAbsDiff(a.S, b.S) < 1e-12);
});

test('reconstructFast: one-GEMM rank-k reconstruction equals the fp64 reference (fp32 and fp64 outputs)', async () => {
  const { reconstructFast } = await import('../src/linalg/index.js');
  const rng = new Rng(8);
  const U = orthonormal(40, 10, rng), V = orthonormal(30, 10, rng);
  const S = Array.from({ length: 10 }, (_, i) => 10 - i);
  const ref = reconstruct(U, S, V, 6);
  const f64 = await reconstructFast(U, S, V, { k: 6, precision: 'fp64' });
  assert.ok(f64.data instanceof Float64Array && maxAbsDiff(f64.data, ref.data) < 1e-12);
  const f32 = await reconstructFast(U, S, V, { k: 6 });
  assert.ok(f32.data instanceof Float32Array && maxAbsDiff(f32.data, ref.data) < 1e-5);
  assert.deepEqual([f32.rows, f32.cols], [40, 30]);
});
