/**
 * Fast fp32 GEMM through onnxruntime-node. ORT ships MLAS (hand-written sgemm kernels for
 * AVX2/AVX-512/NEON) inside its npm package, so this needs nothing beyond the registry.
 *
 * We build a one-node ONNX model in code — `C = Gemm(A, B, transA, transB)` with symbolic
 * dimensions — by hand-encoding the protobuf (a few dozen bytes), create one InferenceSession
 * per (transA, transB, threads) once, and reuse it for every call. Gemm's trans attributes map
 * straight onto MLAS's packed-panel kernels, so Aᵀ·B needs no transpose copy. Inputs are
 * wrapped without copying (ort.Tensor over the Float32Array) and MLAS writes the output into a
 * preallocated tensor passed as a fetch, whose buffer is what we return. The binding of
 * onnxruntime-node 1.30 nevertheless copies every fetched output into a freshly allocated,
 * zero-filled ArrayBuffer, which we drop: ~80 µs for a 1536×80 fp32 output on the development
 * machine (page faults, memset, memmove), a fixed cost per call that JavaScript cannot avoid
 * (`npm run bench -- linalg` prints it per shape as the "per-call floor"). Upstream
 * microsoft/onnxruntime#32346 (open in Nov 2026) returns the caller's tensor instead.
 */
import { createRequire } from 'node:module';
import type { Mat, Mat64 } from './matrix.js';

// Minimal structural types for the parts of onnxruntime-node we use (its own typings pull in
// onnxruntime-common; keeping them local keeps this module loadable when ORT is absent).
interface OrtTensor { readonly data: unknown; readonly dims: readonly number[] }
interface OrtTensorCtor {
  new(type: 'float32', data: Float32Array, dims: readonly number[]): OrtTensor;
  new(type: 'float64', data: Float64Array, dims: readonly number[]): OrtTensor;
}
interface OrtSession { run(feeds: Record<string, OrtTensor>, fetches?: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>> }
interface OrtModule {
  Tensor: OrtTensorCtor;
  InferenceSession: { create(model: Uint8Array, options: Record<string, unknown>): Promise<OrtSession> };
}

export interface OrtGemm {
  run(A: Mat, B: Mat, transA: boolean, transB: boolean, threads: number, m: number, n: number, out?: Float32Array): Promise<Mat>;
  /** fp64 Gemm (MLAS dgemm): used for the Gram matrices, Ritz rotations and CholeskyQR panels. */
  run64(A: Mat64, B: Mat64, transA: boolean, transB: boolean, threads: number, m: number, n: number, out?: Float64Array): Promise<Mat64>;
}

// ---- protobuf encoding (only what a ModelProto with one Gemm node needs) ----
function varint(v: number): number[] {
  const out: number[] = [];
  while (v > 127) { out.push((v & 127) | 128); v = Math.floor(v / 128); }
  out.push(v);
  return out;
}
const enc = new TextEncoder();
function fieldVarint(field: number, v: number): number[] { return [...varint(field << 3), ...varint(v)]; }
function fieldBytes(field: number, bytes: ArrayLike<number>): number[] {
  return [...varint((field << 3) | 2), ...varint(bytes.length), ...Array.from(bytes)];
}
function fieldString(field: number, s: string): number[] { return fieldBytes(field, enc.encode(s)); }

/** ValueInfoProto for a rank-2 float tensor with symbolic dims. */
function valueInfo(name: string, d0: string, d1: string, elemType: number): number[] {
  const dim = (p: string): number[] => fieldBytes(1, fieldString(2, p)); // Dimension.dim_param
  const shape = [...dim(d0), ...dim(d1)];                               // TensorShapeProto
  const tensorType = [...fieldVarint(1, elemType), ...fieldBytes(2, shape)];
  const typeProto = fieldBytes(1, tensorType);                          // TypeProto.tensor_type
  return [...fieldString(1, name), ...fieldBytes(2, typeProto)];
}

function intAttr(name: string, v: number): number[] {
  // AttributeProto: name=1, i=3, type=20 (INT = 2)
  return [...fieldString(1, name), ...fieldVarint(3, v), ...fieldVarint(20, 2)];
}

const FLOAT = 1, DOUBLE = 11; // TensorProto.DataType

/** ONNX model bytes for C = op(A)·op(B) (Gemm, opset 13, no bias), fp32 or fp64. */
export function gemmModelBytes(transA: boolean, transB: boolean, op: 'Gemm' | 'MatMul' = 'Gemm', fp64 = false): Uint8Array {
  const et = fp64 ? DOUBLE : FLOAT;
  if (op === 'MatMul' && (transA || transB)) throw new Error('MatMul has no transpose attributes');
  const node = [
    ...fieldString(1, 'A'), ...fieldString(1, 'B'), ...fieldString(2, 'C'),
    ...fieldString(3, 'gemm'), ...fieldString(4, op),
    ...(op === 'Gemm' ? [
      ...fieldBytes(5, intAttr('transA', transA ? 1 : 0)),
      ...fieldBytes(5, intAttr('transB', transB ? 1 : 0)),
    ] : []),
  ];
  const graph = [
    ...fieldBytes(1, node), ...fieldString(2, 'rlvr_gemm'),
    ...fieldBytes(11, valueInfo('A', transA ? 'k' : 'm', transA ? 'm' : 'k', et)),
    ...fieldBytes(11, valueInfo('B', transB ? 'n' : 'k', transB ? 'k' : 'n', et)),
    ...fieldBytes(12, valueInfo('C', 'm', 'n', et)),
  ];
  const opset = [...fieldString(1, ''), ...fieldVarint(2, 13)];
  const model = [
    ...fieldVarint(1, 8),             // ir_version
    ...fieldString(2, 'rlvr-lens'),   // producer_name
    ...fieldBytes(7, graph),
    ...fieldBytes(8, opset),
  ];
  return Uint8Array.from(model);
}

/** Loads onnxruntime-node and checks one tiny product; throws when unavailable. */
export async function loadOrtGemm(): Promise<OrtGemm> {
  const require = createRequire(import.meta.url);
  const ort = require('onnxruntime-node') as OrtModule;
  const sessions = new Map<string, Promise<OrtSession>>();
  const session = (ta: boolean, tb: boolean, threads: number, fp64: boolean): Promise<OrtSession> => {
    const key = `${fp64 ? 'd' : 's'}${ta ? 1 : 0}${tb ? 1 : 0}:${threads}`;
    let s = sessions.get(key);
    if (!s) {
      s = ort.InferenceSession.create(gemmModelBytes(ta, tb, 'Gemm', fp64), {
        intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
        graphOptimizationLevel: 'all', logSeverityLevel: 3,
      });
      sessions.set(key, s);
    }
    return s;
  };
  // Whether ORT writes the preallocated output in place (decided by the self-check below).
  let inPlace32 = false, inPlace64 = false;
  const gemm: OrtGemm = {
    async run(A, B, transA, transB, threads, m, n, into) {
      const s = await session(transA, transB, Math.max(1, Math.floor(threads)), false);
      const out = into && into.length === m * n ? into : new Float32Array(m * n);
      const res = await s.run(
        { A: new ort.Tensor('float32', A.data, [A.rows, A.cols]), B: new ort.Tensor('float32', B.data, [B.rows, B.cols]) },
        { C: new ort.Tensor('float32', out, [m, n]) },
      );
      // ORT fills the preallocated fetch in place but hands back a NEW Float32Array (a native
      // copy of it); checked once at load time (`inPlace32` / `inPlace64`), so the result is `out` itself and
      // not a second copy (one copy per call was ~3% of a spectrum run, plus its garbage).
      if (inPlace32) return { rows: m, cols: n, data: out };
      const c = res['C'];
      const data = c && c.data instanceof Float32Array ? c.data : out;
      return { rows: m, cols: n, data: data === out ? out : Float32Array.from(data) };
    },
    async run64(A, B, transA, transB, threads, m, n, into) {
      const s = await session(transA, transB, Math.max(1, Math.floor(threads)), true);
      const out = into && into.length === m * n ? into : new Float64Array(m * n);
      const res = await s.run(
        { A: new ort.Tensor('float64', A.data, [A.rows, A.cols]), B: new ort.Tensor('float64', B.data, [B.rows, B.cols]) },
        { C: new ort.Tensor('float64', out, [m, n]) },
      );
      if (inPlace64) return { rows: m, cols: n, data: out };
      const c = res['C'];
      const data = c && c.data instanceof Float64Array ? c.data : out;
      return { rows: m, cols: n, data: data === out ? out : Float64Array.from(data) };
    },
  };
  // Smoke-check: [1 2; 3 4]·[5; 6] = [17; 39]; also whether the preallocated output buffer
  // (here `probe`, NaN-filled) is written in place — only then is it returned without a copy.
  const probe = Float32Array.of(NaN, NaN);
  const r = await gemm.run({ rows: 2, cols: 2, data: Float32Array.of(1, 2, 3, 4) },
    { rows: 2, cols: 1, data: Float32Array.of(5, 6) }, false, false, 1, 2, 1, probe);
  if (r.data[0] !== 17 || r.data[1] !== 39) throw new Error('onnxruntime Gemm self-check failed');
  inPlace32 = probe[0] === 17 && probe[1] === 39;
  const r64 = await gemm.run64({ rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) },
    { rows: 2, cols: 1, data: Float64Array.of(5, 6) }, true, false, 1, 2, 1);
  if (r64.data[0] !== 23 || r64.data[1] !== 34) throw new Error('onnxruntime fp64 Gemm self-check failed');
  const probe64 = Float64Array.of(NaN, NaN);
  await gemm.run64({ rows: 2, cols: 2, data: Float64Array.of(1, 2, 3, 4) },
    { rows: 2, cols: 1, data: Float64Array.of(5, 6) }, true, false, 1, 2, 1, probe64);
  inPlace64 = probe64[0] === 23 && probe64[1] === 34;
  return gemm;
}
