/**
 * Deterministic synthetic checkpoints with the exact names and shapes of a real model
 * (Qwen2 / DeepSeek-R1-Distill-Qwen-1.5B), for benchmarks and tests of every probe.
 *
 * Library: `generateSynthetic(opts)` writes one checkpoint; `ensureSyntheticSet(opts)`
 * writes (or reuses, when its recorded parameters match) one base and several tuned models
 * derived from it — what the sparsity, spectrum, locality and report benchmarks use.
 * Everything streams tensor by tensor in fixed-size chunks, so memory stays bounded
 * (a few MB) whatever the model size; same parameters → byte-identical files.
 *
 * The model of the values (documented so later probes know what structure to expect):
 * - Base: every entry is N(0, σ²) rounded to bf16, σ = 0.02 for embeddings, lm_head and
 *   linear weights, 0.1 for q/k/v biases; RMSNorm weights are 1 + N(0, 0.05²). Normals
 *   come from a 65,536-entry inverse-CDF table indexed by 16 random bits (tails clipped
 *   at ≈4.3σ), which is exact enough for 8-bit-mantissa storage and ~20× faster than
 *   Box–Muller. With `spectrumDecay` a > 0 the linear weights' entries are further scaled
 *   along the short side by d_j ∝ (j + 1)^-a (random order, mean d² = 1), then rounded to
 *   bf16: a power-law spectrum instead of the flat one of i.i.d. entries.
 * - Tuned (`base` given): each entry changes independently with probability
 *   p = min(1, F · a_row · g(|w|) / Z), where F is `changedFraction`, g(|w|) = 1/(1 + |w|/rms)
 *   favours small magnitudes (Gate III: small weights move by a whole bf16 ULP more often),
 *   a_row = 4 on a seeded 10% of rows ("hot" output features, the row stripes of paper
 *   Fig. 3) and 1 elsewhere, and Z = mean(a_row · g) over the tensor (computed exactly from a
 *   histogram pass), so the expected changed fraction is F (less where p clips at 1). A
 *   changed entry moves by k ∈ {1, 2, 3} storage ULPs (k = 1 with probability 3/4), in a
 *   random direction, never crossing into Inf/NaN; its bits always differ, so the η rule
 *   sees every change. For fp32 bases the step is applied to the upper 16 bits (a bf16-sized
 *   step) and `subBf16Fraction` of the other entries change only below bf16 resolution:
 *   one of mantissa bits 10–14 flips (relative 2^-13..2^-9, so the η rule sees some of
 *   them while bf16 rounding mostly hides them: Gate III made measurable). 1-D tensors treat every
 *   entry as its own row.
 * Per-tensor random streams are seeded from (seed, tensor name), so tensors are
 * independent of order and of each other.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlvrError, UsageError, fromSystemError } from '../errors.js';
import { openCheckpoint, type TensorSource } from '../io/checkpoint.js';
import { type DType, ITEMSIZE, bf16ToNumber, f16ToNumber } from '../io/dtype.js';
import { ensureDir, safetensorsHeader, writeFileAtomic } from '../io/writer.js';
import { Rng } from '../util/random.js';
import { VERSION } from '../version.js';
import { type Qwen2Dims, type SynthRole, qwen2ConfigJson, qwen2Tensors, scaledQwen2Dims } from './qwen2.js';

export interface SynthOptions {
  /** Output folder (created). */
  out: string;
  /** Width scale in (0, 1]; 1 = the real 1.5B shapes (~3.55 GB in bf16). */
  scale?: number;
  /** Overrides of individual dims (tiny fixtures). */
  dims?: Partial<Qwen2Dims>;
  seed?: number;
  /** Storage dtype of a generated base (a derived model keeps the base's dtypes). */
  dtype?: 'BF16' | 'F32';
  /**
   * Base only: power-law exponent a of the linear weights' spectra (default 0: i.i.d. entries,
   * a flat Marchenko–Pastur spectrum). With a > 0, every 2-D linear weight is Z·diag(d) (tall)
   * or diag(d)·Z (wide) with Z the i.i.d. normals above and d_j ∝ (j + 1)^-a along the short
   * side, in a seeded random order and scaled so the mean of d² is 1 (the entries' RMS stays
   * σ). The singular values then decay roughly like (j + 1)^-a (σ₁/σ₆₄ ≈ 64^a), as trained
   * weights' do; the spectrum probe's warm start and iteration counts depend on that.
   */
  spectrumDecay?: number;
  /** Derive a tuned model from this checkpoint (any checkpoint spec) instead of a base. */
  base?: string;
  /** Expected fraction of entries changed in a derived model (default 0.3). */
  changedFraction?: number;
  /** fp32 derived models: fraction of remaining entries changed below bf16 resolution. */
  subBf16Fraction?: number;
  /** false / undefined: one model.safetensors; true: 2 shards + index; n: n shards. */
  sharded?: boolean | number;
  /** Elements per streamed chunk (memory bound). */
  chunkElems?: number;
  /** Write synth.json (parameters, counts; default true; it records absolute paths). */
  record?: boolean;
  /** Progress in bytes written (tensor data). */
  onProgress?: (done: number, total: number) => void;
}

export interface SynthResult {
  dir: string;
  files: string[];
  tensors: number;
  numel: number;
  bytes: number;
  /** Derived models: entries whose stored bits changed. */
  changed: number | null;
  /** Derived models: sum of the per-entry change probabilities. */
  expectedChanged: number | null;
}

const STD: Record<SynthRole, number> = { embed: 0.02, linear: 0.02, bias: 0.1, norm: 0.05 };
const HOT_ROW_FRACTION = 0.1;
const HOT_ROW_FACTOR = 4;

/** Acklam's inverse normal CDF (relative error < 1.2e-9). */
function inverseNormalCdf(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const lo = 0.02425;
  if (p < lo) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - lo) return -inverseNormalCdf(1 - p);
  const q = p - 0.5, r = q * q;
  return (((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

let zTable: Float64Array | null = null;
/** z-quantiles at (k + 0.5) / 65536, k = 0..65535. */
function normalQuantiles(): Float64Array {
  if (!zTable) {
    zTable = new Float64Array(65536);
    for (let k = 0; k < 65536; k++) zTable[k] = inverseNormalCdf((k + 0.5) / 65536);
  }
  return zTable;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** float32 bits of x. */
function f32Bits(x: number): number { f32[0] = x; return u32[0]!; }

/** Value tables for a role: 65,536 float32 bit patterns (bf16 tables keep the top half). */
const valueTables = new Map<string, Uint32Array>();
function valueTable(role: SynthRole, dtype: 'BF16' | 'F32'): Uint32Array {
  const key = `${role}/${dtype}`;
  const hit = valueTables.get(key);
  if (hit) return hit;
  const z = normalQuantiles();
  const t = new Uint32Array(65536);
  const sd = STD[role];
  for (let k = 0; k < 65536; k++) {
    const v = role === 'norm' ? 1 + sd * z[k]! : sd * z[k]!;
    const bits = f32Bits(v);
    // round to nearest even for bf16 storage
    t[k] = dtype === 'BF16' ? ((((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff) >>> 0) : bits;
  }
  valueTables.set(key, t);
  return t;
}

/** FNV-1a of a string mixed with the seed: the per-tensor stream seed. */
export function tensorSeed(seed: number, name: string, salt = 0): number {
  let h = 0x811c9dc5 ^ salt;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return (h ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
}

interface StreamTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Calls `emit` with consecutive chunks whose lengths sum to the tensor's byte length. */
  produce(emit: (chunk: Uint8Array) => void): void;
}

/** Streaming atomic safetensors writer: header first, then each tensor chunk by chunk. */
function writeStreaming(dest: string, tensors: readonly StreamTensor[], metadata: Record<string, string>, onBytes?: (n: number) => void): number {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}`);
  let fd: number | null = null;
  let total = 0;
  try {
    fd = fs.openSync(tmp, 'w');
    const writeAll = (b: Uint8Array): void => {
      let off = 0;
      while (off < b.byteLength) off += fs.writeSync(fd!, b, off, b.byteLength - off);
      total += b.byteLength;
      onBytes?.(b.byteLength);
    };
    writeAll(safetensorsHeader(tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: new Uint8Array(0) })), metadata));
    for (const t of tensors) {
      const want = t.shape.reduce((a, b) => a * b, 1) * ITEMSIZE[t.dtype];
      const before = total;
      t.produce(writeAll);
      if (total - before !== want) throw new RlvrError(`tensor ${t.name}: produced ${total - before} bytes, needs ${want}`, { file: dest, code: 'E_WRITE_SIZE' });
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, dest);
    return total;
  } catch (e) {
    if (fd !== null) try { fs.closeSync(fd); } catch { /* ignore */ }
    try { fs.rmSync(tmp, { force: true }); } catch { /* ignore */ }
    throw e instanceof RlvrError ? e : fromSystemError(e, dest, 'write');
  }
}

/** Splits tensors into `n` consecutive groups of roughly equal bytes. */
function splitShards(tensors: readonly StreamTensor[], n: number): StreamTensor[][] {
  const sizes = tensors.map((t) => t.shape.reduce((a, b) => a * b, 1) * ITEMSIZE[t.dtype]);
  const total = sizes.reduce((a, b) => a + b, 0);
  const groups: StreamTensor[][] = Array.from({ length: n }, () => []);
  let acc = 0;
  tensors.forEach((t, i) => {
    const g = Math.min(n - 1, Math.floor(((acc + sizes[i]! / 2) * n) / Math.max(1, total)));
    groups[g]!.push(t);
    acc += sizes[i]!;
  });
  return groups.filter((g) => g.length > 0);
}

function writeModel(dir: string, tensors: StreamTensor[], sharded: boolean | number | undefined, onProgress?: (done: number, total: number) => void): { files: string[]; bytes: number } {
  const totalBytes = tensors.reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1) * ITEMSIZE[t.dtype], 0);
  let done = 0;
  const onBytes = onProgress ? (n: number): void => { done += n; onProgress(Math.min(done, totalBytes), totalBytes); } : undefined;
  ensureDir(dir);
  const metadata = { format: 'pt' };
  const n = sharded === true ? 2 : typeof sharded === 'number' ? Math.max(1, Math.floor(sharded)) : 1;
  if (!sharded) {
    const dest = path.join(dir, 'model.safetensors');
    return { files: [dest], bytes: writeStreaming(dest, tensors, metadata, onBytes) };
  }
  const groups = splitShards(tensors, n);
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  let bytes = 0, dataBytes = 0;
  groups.forEach((g, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    const dest = path.join(dir, file);
    bytes += writeStreaming(dest, g, metadata, onBytes);
    files.push(dest);
    for (const t of g) { weightMap[t.name] = file; dataBytes += t.shape.reduce((a, b) => a * b, 1) * ITEMSIZE[t.dtype]; }
  });
  const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const index = path.join(dir, 'model.safetensors.index.json');
  writeFileAtomic(index, JSON.stringify({ metadata: { total_size: dataBytes }, weight_map: sorted }, null, 2) + '\n');
  files.push(index);
  return { files, bytes };
}

function numel(shape: readonly number[]): number { return shape.reduce((a, b) => a * b, 1); }

/** A generated base tensor: normals from the quantile table, streamed in chunks. */
function baseTensor(name: string, shape: number[], role: SynthRole, dtype: 'BF16' | 'F32', seed: number, chunkElems: number, decay = 0): StreamTensor {
  if (decay > 0 && shape.length === 2) return decayedTensor(name, shape as [number, number], role, dtype, seed, chunkElems, decay);
  return {
    name, dtype, shape,
    produce(emit) {
      const table = valueTable(role, dtype);
      const rng = new Rng(tensorSeed(seed, name));
      const n = numel(shape);
      const cap = Math.min(n, chunkElems) + 1;
      const buf16 = dtype === 'BF16' ? new Uint16Array(cap) : null;
      const buf32 = dtype === 'F32' ? new Uint32Array(cap) : null;
      for (let start = 0; start < n; start += chunkElems) {
        const m = Math.min(chunkElems, n - start);
        if (buf16) {
          for (let i = 0; i < m; i += 2) { const r = rng.nextU32(); buf16[i] = table[r & 0xffff]!; buf16[i + 1] = table[r >>> 16]!; }
          emit(new Uint8Array(buf16.buffer, 0, m * 2));
        } else {
          for (let i = 0; i < m; i += 2) { const r = rng.nextU32(); buf32![i] = table[r & 0xffff]!; buf32![i + 1] = table[r >>> 16]!; }
          emit(new Uint8Array(buf32!.buffer, 0, m * 4));
        }
      }
    },
  };
}

/** Scales of the short side for `spectrumDecay` a: (j + 1)^-a in a seeded order, mean square 1. */
export function decayScales(count: number, decay: number, seed: number): Float64Array {
  const d = new Float64Array(count);
  let ss = 0;
  for (let j = 0; j < count; j++) { d[j] = (j + 1) ** -decay; ss += d[j]! * d[j]!; }
  const norm = Math.sqrt(count / ss);
  for (let j = 0; j < count; j++) d[j]! *= norm;
  const rng = new Rng(seed);
  for (let j = count - 1; j > 0; j--) { const k = rng.nextU32() % (j + 1); const t = d[j]!; d[j] = d[k]!; d[k] = t; }
  return d;
}

/** A base linear weight with a power-law spectrum: the same normals scaled along the short side. */
function decayedTensor(name: string, shape: [number, number], role: SynthRole, dtype: 'BF16' | 'F32', seed: number, chunkElems: number, decay: number): StreamTensor {
  return {
    name, dtype, shape,
    produce(emit) {
      const z = normalQuantiles();
      const sd = STD[role];
      const [rows, cols] = shape;
      const tall = rows >= cols;
      const scale = decayScales(Math.min(rows, cols), decay, tensorSeed(seed, name, 0x2545f491));
      const rng = new Rng(tensorSeed(seed, name));
      const n = rows * cols;
      const cap = Math.min(n, chunkElems) + 1;
      const buf16 = dtype === 'BF16' ? new Uint16Array(cap) : null;
      const buf32 = dtype === 'F32' ? new Uint32Array(cap) : null;
      const value = (i: number, k: number): number => {
        const v = f32Bits(sd * z[k]! * scale[tall ? i % cols : Math.floor(i / cols)]!);
        return buf16 ? ((v + 0x7fff + ((v >>> 16) & 1)) >>> 16) & 0xffff : v;
      };
      for (let start = 0; start < n; start += chunkElems) {
        const m = Math.min(chunkElems, n - start);
        const buf = buf16 ?? buf32!;
        for (let i = 0; i < m; i += 2) { const r = rng.nextU32(); buf[i] = value(start + i, r & 0xffff); buf[i + 1] = value(start + i + 1, r >>> 16); }
        emit(new Uint8Array(buf.buffer, 0, m * buf.BYTES_PER_ELEMENT));
      }
    },
  };
}

/** Sign-magnitude 16-bit float codes: the largest finite magnitude. */
function maxFiniteCode(dtype: DType): number {
  return dtype === 'F16' ? 0x7bff : 0x7f7f;
}

/** |value| of a 16-bit code (the upper half for F32), NaN for non-finite. */
function codeMagnitude(code: number, dtype: DType): number {
  const v = dtype === 'F16' ? f16ToNumber(code) : bf16ToNumber(code);
  return Number.isFinite(v) ? Math.abs(v) : NaN;
}

const magTables = new Map<DType, Float64Array>();
function magnitudeTable(dtype: DType): Float64Array {
  let t = magTables.get(dtype);
  if (!t) {
    t = new Float64Array(65536);
    for (let c = 0; c < 65536; c++) t[c] = codeMagnitude(c, dtype);
    magTables.set(dtype, t);
  }
  return t;
}

interface DeriveStats { changed: number; expected: number }

/** A tuned tensor derived from `base` (see the module header for the model). */
function derivedTensor(src: TensorSource, name: string, F: number, subBf16: number, seed: number, chunkElems: number, stats: DeriveStats): StreamTensor {
  const info = src.info(name);
  const dtype = info.dtype;
  const supported = dtype === 'BF16' || dtype === 'F16' || dtype === 'F32';
  return {
    name, dtype, shape: info.shape,
    produce(emit) {
      const n = info.numel;
      const item = ITEMSIZE[dtype];
      const buf = new Uint8Array(new ArrayBuffer(Math.max(4, Math.min(n, chunkElems) * item)));
      if (!supported || n === 0) {
        for (let s = 0; s < n; s += chunkElems) {
          const m = Math.min(chunkElems, n - s);
          emit(src.readBytes(name, s * item, m * item, buf.subarray(0, m * item)));
        }
        return;
      }
      const cols = info.shape.length >= 2 ? n / info.shape[0]! : 1;
      const rows = n / cols;
      const rowRng = new Rng(tensorSeed(seed, name, 0x5bd1e995));
      const hot = new Uint8Array(rows);
      for (let r = 0; r < rows; r++) hot[r] = rowRng.uniform() < HOT_ROW_FRACTION ? 1 : 0;
      // The 16-bit code of element i: bf16/f16 itself, or the upper half of an f32.
      const hi = dtype === 'F32' ? 1 : 0, stride = dtype === 'F32' ? 2 : 1;
      // Pass 1: histogram of codes per row class → rms and Z exactly.
      const histHot = new Float64Array(65536), histCold = new Float64Array(65536);
      for (let s = 0; s < n; s += chunkElems) {
        const m = Math.min(chunkElems, n - s);
        const h = new Uint16Array(src.readBytes(name, s * item, m * item, buf.subarray(0, m * item)).buffer, 0, m * stride);
        let i = 0;
        while (i < m) {
          const row = Math.floor((s + i) / cols);
          const end = Math.min(m, (row + 1) * cols - s);
          const hist = hot[row] ? histHot : histCold;
          for (; i < end; i++) hist[h[i * stride + hi]!]!++;
        }
      }
      let sumSq = 0, finite = 0;
      const mag = magnitudeTable(dtype);
      for (let c = 0; c < 65536; c++) {
        const cnt = histHot[c]! + histCold[c]!;
        if (cnt > 0 && !Number.isNaN(mag[c]!)) { sumSq += cnt * mag[c]! * mag[c]!; finite += cnt; }
      }
      const rms = finite > 0 ? Math.sqrt(sumSq / finite) : 1;
      const g = new Float64Array(65536);
      let z = 0;
      for (let c = 0; c < 65536; c++) {
        g[c] = Number.isNaN(mag[c]!) ? 0 : 1 / (1 + mag[c]! / (rms > 0 ? rms : 1));
        z += (histHot[c]! * HOT_ROW_FACTOR + histCold[c]!) * g[c]!;
      }
      z /= n;
      // Thresholds on a uniform u32: changed iff u < thr (thr may reach 2^32 = always).
      const thrHot = new Float64Array(65536), thrCold = new Float64Array(65536);
      for (let c = 0; c < 65536; c++) {
        const pc = z > 0 ? Math.min(1, (F * g[c]!) / z) : 0;
        const ph = z > 0 ? Math.min(1, (F * HOT_ROW_FACTOR * g[c]!) / z) : 0;
        thrCold[c] = Math.floor(pc * 4294967296);
        thrHot[c] = Math.floor(ph * 4294967296);
        stats.expected += histCold[c]! * pc + histHot[c]! * ph;
      }
      const subThr = Math.floor(Math.min(1, Math.max(0, subBf16)) * 4294967296);
      const maxCode = maxFiniteCode(dtype);
      const rng = new Rng(tensorSeed(seed, name));
      // Pass 2: change and emit.
      for (let s = 0; s < n; s += chunkElems) {
        const m = Math.min(chunkElems, n - s);
        const bytes = src.readBytes(name, s * item, m * item, buf.subarray(0, m * item));
        const h = new Uint16Array(bytes.buffer, 0, m * stride);
        let i = 0;
        while (i < m) {
          const row = Math.floor((s + i) / cols);
          const end = Math.min(m, (row + 1) * cols - s);
          const thr = hot[row] ? thrHot : thrCold;
          for (; i < end; i++) {
            const code = h[i * stride + hi]!;
            if (rng.nextU32() < thr[code]!) {
              const r = rng.nextU32();
              const k = (r & 3) !== 3 ? 1 : 2 + ((r >>> 2) & 1);
              const sign = code & 0x8000;
              let a = code & 0x7fff;
              const up = ((r >>> 3) & 1) === 1;
              if (up ? a + k > maxCode : a < k) a = up ? a - k : a + k; else a = up ? a + k : a - k;
              h[i * stride + hi] = sign | a;
              stats.changed++;
            } else if (stride === 2 && subThr > 0 && rng.nextU32() < subThr) {
              // below bf16 resolution: flip one of mantissa bits 10–14 (relative 2^-13..2^-9,
              // so some of these exceed η = 1e-3 while bf16 rounding mostly hides them)
              h[i * stride] = h[i * stride]! ^ (1 << (10 + (rng.nextU32() % 5)));
            }
          }
        }
        emit(bytes);
      }
    },
  };
}

/** Writes one synthetic checkpoint (a base, or a tuned model when `opts.base` is set). */
export function generateSynthetic(opts: SynthOptions): SynthResult {
  const seed = opts.seed ?? 0;
  const chunkElems = Math.max(2, (opts.chunkElems ?? 1 << 20) & ~1);
  const dir = path.resolve(opts.out);
  if (opts.base !== undefined) {
    const F = opts.changedFraction ?? 0.3;
    if (!(F >= 0 && F <= 1)) throw new UsageError(`--changed-fraction must be in [0, 1], got ${F}`);
    if (path.resolve(opts.base) === dir) throw new UsageError('--out must differ from --base (inputs are never modified)');
    const src = openCheckpoint(opts.base);
    try {
      const stats: DeriveStats = { changed: 0, expected: 0 };
      const tensors = src.names.map((nm) => derivedTensor(src, nm, F, opts.subBf16Fraction ?? 0, seed, chunkElems, stats));
      const { files, bytes } = writeModel(dir, tensors, opts.sharded, opts.onProgress);
      const cfg = src.root.endsWith('.safetensors') ? path.join(path.dirname(src.root), 'config.json') : path.join(src.root, 'config.json');
      if (fs.existsSync(cfg)) writeFileAtomic(path.join(dir, 'config.json'), fs.readFileSync(cfg));
      const total = src.names.reduce((a, nm) => a + src.info(nm).numel, 0);
      const result: SynthResult = { dir, files, tensors: tensors.length, numel: total, bytes, changed: stats.changed, expectedChanged: stats.expected };
      if (opts.record !== false) writeRecord(dir, synthParams(opts), result);
      return result;
    } finally {
      src.close();
    }
  }
  const dims = scaledQwen2Dims(opts.scale ?? 1, opts.dims);
  const dtype = opts.dtype ?? 'BF16';
  const specs = qwen2Tensors(dims);
  const decay = opts.spectrumDecay ?? 0;
  if (!(decay >= 0 && decay <= 4)) throw new UsageError(`--spectrum-decay must be in [0, 4], got ${decay}`);
  const tensors = specs.map((s) => baseTensor(s.name, s.shape, s.role, dtype, seed, chunkElems, s.role === 'linear' ? decay : 0));
  const { files, bytes } = writeModel(dir, tensors, opts.sharded, opts.onProgress);
  const cfg = qwen2ConfigJson(dims);
  if (dtype === 'F32') cfg.torch_dtype = 'float32';
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  const total = specs.reduce((a, s) => a + numel(s.shape), 0);
  const result: SynthResult = { dir, files, tensors: specs.length, numel: total, bytes, changed: null, expectedChanged: null };
  if (opts.record !== false) writeRecord(dir, synthParams(opts), result);
  return result;
}

/** The parameters that determine the bytes (what `ensureSynthetic` compares). */
function synthParams(o: SynthOptions): Record<string, unknown> {
  return {
    generator: 'rlvr-lens synth', formatVersion: 1, seed: o.seed ?? 0,
    scale: o.base !== undefined ? null : o.scale ?? 1, dims: o.base !== undefined ? null : o.dims ?? null,
    dtype: o.base !== undefined ? null : o.dtype ?? 'BF16',
    base: o.base !== undefined ? path.resolve(o.base) : null,
    changedFraction: o.base !== undefined ? o.changedFraction ?? 0.3 : null,
    subBf16Fraction: o.base !== undefined ? o.subBf16Fraction ?? 0 : null,
    sharded: o.sharded ?? false,
    // only when set, so records written before the option existed still match
    ...(o.base === undefined && (o.spectrumDecay ?? 0) > 0 ? { spectrumDecay: o.spectrumDecay } : {}),
  };
}

const RECORD = 'synth.json';

function writeRecord(dir: string, params: Record<string, unknown>, r: SynthResult): void {
  const rec = { params, toolVersion: VERSION, tensors: r.tensors, numel: r.numel, bytes: r.bytes, changed: r.changed, expectedChanged: r.expectedChanged, files: r.files.map((f) => path.basename(f)) };
  writeFileAtomic(path.join(dir, RECORD), JSON.stringify(rec, null, 2) + '\n');
}

/**
 * Like generateSynthetic, but reuses `opts.out` when its synth.json records the same
 * parameters and all its files exist (benchmarks cache their models this way).
 */
export function ensureSynthetic(opts: SynthOptions): SynthResult {
  const dir = path.resolve(opts.out);
  const recPath = path.join(dir, RECORD);
  if (fs.existsSync(recPath)) {
    try {
      const rec = JSON.parse(fs.readFileSync(recPath, 'utf8')) as { params: unknown; tensors: number; numel: number; bytes: number; changed: number | null; expectedChanged: number | null; files: string[] };
      // a derived model is stale when its base was regenerated after it
      const baseRec = opts.base !== undefined ? path.join(path.resolve(opts.base), RECORD) : null;
      const fresh = !baseRec || !fs.existsSync(baseRec) || fs.statSync(baseRec).mtimeMs <= fs.statSync(recPath).mtimeMs;
      if (fresh && JSON.stringify(rec.params) === JSON.stringify(synthParams(opts)) && rec.files.every((f) => fs.existsSync(path.join(dir, f)))) {
        return { dir, files: rec.files.map((f) => path.join(dir, f)), tensors: rec.tensors, numel: rec.numel, bytes: rec.bytes, changed: rec.changed, expectedChanged: rec.expectedChanged };
      }
    } catch { /* regenerate */ }
  }
  return generateSynthetic(opts);
}

export interface SynthSetOptions {
  /** Folder holding `base/` and `tuned-<i>/`. */
  dir: string;
  scale?: number;
  dims?: Partial<Qwen2Dims>;
  seed?: number;
  dtype?: 'BF16' | 'F32';
  /** One changed fraction per tuned model (default [0.3]). */
  changedFractions?: number[];
  subBf16Fraction?: number;
  sharded?: boolean | number;
  /** The base's `spectrumDecay` (see SynthOptions). */
  spectrumDecay?: number;
}

/**
 * One base and one tuned model per entry of `changedFractions` (tuned i uses seed + 1 + i),
 * reused when already present with the same parameters. Returns their folders.
 */
export function ensureSyntheticSet(o: SynthSetOptions): { base: SynthResult; tuned: SynthResult[] } {
  const seed = o.seed ?? 0;
  const base = ensureSynthetic({ out: path.join(o.dir, 'base'), scale: o.scale, dims: o.dims, seed, dtype: o.dtype, sharded: o.sharded, spectrumDecay: o.spectrumDecay });
  const tuned = (o.changedFractions ?? [0.3]).map((F, i) => ensureSynthetic({
    out: path.join(o.dir, `tuned-${i}`), base: base.dir, seed: seed + 1 + i, changedFraction: F,
    subBf16Fraction: o.subBf16Fraction, sharded: o.sharded,
  }));
  return { base, tuned };
}
