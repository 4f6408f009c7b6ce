/**
 * The update mask M = 1[changed] of one tensor pair (SPEC §1–§2).
 *
 * Rule 'bf16' (default, paper Def. 2.1): unchanged iff |w+ − w0| ≤ η·max(|w0|, |w+|), η = 1e-3.
 * For two finite bf16 values this is exactly "bit patterns equal, ±0 equal" (App. E,
 * Prop. E.3 — also for subnormals, whose relative spacing is ≥ 2^-7), which is the fast
 * path (a WebAssembly SIMD kernel, ./bf16-kernel.ts) whenever η ≤ 2^-9. Rule 'abs'
 * (Mukherjee et al. 2025): unchanged iff |w+ − w0| ≤ tol. Both rules on decoded values are
 * evaluated in float64 (exact differences for every ≤32-bit float dtype); fp32 pairs use
 * SIMD kernels with the same f64 operations, bf16 pairs a value table, others JS loops.
 *
 * Non-finite entries (NaN or ±Inf on either side) are counted in `nonFinite` and decided by
 * identity, never by arithmetic (where NaN compares false and would read as "unchanged"):
 * - same storage dtype on both sides: unchanged iff the bit patterns are identical
 *   (±0 aside, which only matters for finite values), so a NaN whose payload changed is a
 *   change and an untouched NaN is not;
 * - different dtypes: unchanged iff both are NaN, or both are the same infinity.
 * The bitwise fast path applies exactly these semantics. Reports list every tensor with
 * nonFinite > 0 together with its NaN / Inf counts per side (`countNonFinite`).
 */
import { type DType, ITEMSIZE, decodeToFloat32 } from '../io/dtype.js';
import type { TensorSource } from '../io/checkpoint.js';
import { BitMask } from './mask.js';
import { Bf16DiffKernel } from './bf16-kernel.js';

export type ProbeRule = 'bf16' | 'abs';

export interface ProbeOptions {
  rule: ProbeRule;
  /** Relative tolerance of the bf16 rule. */
  eta: number;
  /** Absolute tolerance of the abs rule. */
  tol: number;
}

export const DEFAULT_PROBE: Readonly<ProbeOptions> = { rule: 'bf16', eta: 1e-3, tol: 1e-5 };

export interface MaskStats {
  /** Entries where base or tuned is NaN/Inf. */
  nonFinite: number;
}

/**
 * True when the rule can be decided by comparing bf16 bit patterns: any two distinct finite
 * bf16 values differ relatively by more than 2^-8 (Lemma E.1), so any η ≤ 2^-9 (< half that
 * gap, Prop. E.3) classifies exactly as the bitwise compare.
 */
export function isBitwiseFastPath(a: DType, b: DType, p: ProbeOptions): boolean {
  return a === 'BF16' && b === 'BF16' && p.rule === 'bf16' && p.eta <= 2 ** -9;
}

// ---------------------------------------------------------------------------------------
// Chunk kernels. A `ChunkScratch` owns reusable buffers (one per thread); every kernel
// writes one bit per entry into `words` (word w covers entries 32w..32w+31 of the chunk)
// and returns the number of set bits.
// ---------------------------------------------------------------------------------------

/** Reusable per-thread buffers for chunk compares (files can be read straight into them). */
export class ChunkScratch {
  readonly maxElems: number;
  readonly kernel: Bf16DiffKernel;
  /** Offsets in kernel memory: two input regions (8 bytes/entry: any dtype) and the words. */
  private readonly offA: number;
  private readonly offB: number;
  private readonly offW: number;
  private readonly offCA: number;
  private readonly offCB: number;
  private f32a: Float32Array;
  private f32b: Float32Array;
  private f64a: Float64Array;
  private f64b: Float64Array;

  constructor(maxElems: number) {
    this.maxElems = Math.ceil(Math.max(32, maxElems) / 32) * 32;
    const m = this.maxElems;
    this.kernel = new Bf16DiffKernel(m * 8 * 2 + m * 2 * 2 + m / 8 + 64 * 8);
    this.offA = this.kernel.alloc(m * 8);
    this.offB = this.kernel.alloc(m * 8);
    this.offCA = this.kernel.alloc(m * 2);
    this.offCB = this.kernel.alloc(m * 2);
    this.offW = this.kernel.alloc(m / 8);
    this.f32a = new Float32Array(0); this.f32b = new Float32Array(0);
    this.f64a = new Float64Array(0); this.f64b = new Float64Array(0);
  }

  /** Region to read base bytes into (in kernel memory: no copy before the SIMD compare). */
  baseBuffer(bytes: number): Uint8Array { return this.kernel.bytes(this.offA, bytes); }
  tunedBuffer(bytes: number): Uint8Array { return this.kernel.bytes(this.offB, bytes); }

  /** The kernel's output words for the last bitwise compare (valid until the next one). */
  kernelWords(n: number): Uint32Array { return new Uint32Array(this.kernel.memory.buffer, this.offW, Math.ceil(n / 32)); }

  /** Places `bytes` in region A or B unless it already is there; returns its offset. */
  private place(bytes: Uint8Array, which: 'A' | 'B'): number {
    const off = which === 'A' ? this.offA : this.offB;
    const mem = this.kernel.memory.buffer;
    if (bytes.buffer === mem && bytes.byteOffset === off) return off;
    new Uint8Array(mem, off, bytes.byteLength).set(bytes);
    return off;
  }

  /**
   * Bitwise bf16 compare of `n` entries (the η fast path). Returns the changed count and
   * whether any NaN/Inf was seen; words via `kernelWords(n)`.
   */
  bitwise(a: Uint8Array, b: Uint8Array, n: number, wantWords = true): { changed: number; nonFiniteSeen: boolean } {
    const oa = this.place(a, 'A'), ob = this.place(b, 'B');
    const changed = wantWords ? this.kernel.diff(oa, ob, n, this.offW) : this.kernel.count(oa, ob, n);
    return { changed, nonFiniteSeen: this.kernel.nonFiniteSeen() };
  }

  /**
   * fp32 pairs under the η or abs rule with the SIMD kernel (null without WebAssembly). A
   * chunk with a NaN/Inf is redone by the JS rule, which decides those by identity.
   */
  f32Rule(a: Uint8Array, b: Uint8Array, n: number, rule: ProbeRule, p: ProbeOptions): { changed: number; nonFinite: number } | null {
    if (!this.kernel.usesWasm) return null;
    const oa = this.place(a, 'A'), ob = this.place(b, 'B');
    const changed = this.kernel.f32Rule(oa, ob, n, this.offW, rule === 'bf16', rule === 'bf16' ? p.eta : p.tol);
    if (changed === null) return null;
    if (!this.kernel.nonFiniteSeen()) return { changed, nonFinite: 0 };
    const x = new Float32Array(this.kernel.memory.buffer, oa, n), y = new Float32Array(this.kernel.memory.buffer, ob, n);
    const bytesA = new Uint8Array(this.kernel.memory.buffer, oa, 4 * n), bytesB = new Uint8Array(this.kernel.memory.buffer, ob, 4 * n);
    return ruleWords(x, y, n, rule, p, this.kernelWords(n), bitsEqualFn(bytesA, bytesB, 'F32'));
  }

  private words: Uint32Array | null = null;
  /** Scratch words for rules whose caller does not keep them. */
  scratchWords(n: number): Uint32Array {
    const g = Math.ceil(n / 32);
    if (!this.words || this.words.length < g) this.words = new Uint32Array(Math.ceil(this.maxElems / 32));
    return this.words.subarray(0, g);
  }

  /**
   * bf16-visible compare: rounds both sides to bf16 (RNE, as saving in bf16 does) and
   * compares bits. Any float dtypes; words via `kernelWords(n)`.
   */
  bf16Visible(a: Uint8Array, ad: DType, b: Uint8Array, bd: DType, n: number): number {
    if (ad === 'BF16' && bd === 'BF16') return this.bitwise(a, b, n, false).changed;
    if (ad === 'F32' && bd === 'F32' && this.kernel.usesWasm) {
      const oa = this.place(a, 'A'), ob = this.place(b, 'B');
      const c = this.kernel.f32Visible(oa, ob, n, this.offW);
      if (c !== null && !this.kernel.nonFiniteSeen()) return c;
      a = new Uint8Array(this.kernel.memory.buffer, oa, 4 * n);
      b = new Uint8Array(this.kernel.memory.buffer, ob, 4 * n);
    }
    const ca = new Uint16Array(this.kernel.memory.buffer, this.offCA, n);
    const cb = new Uint16Array(this.kernel.memory.buffer, this.offCB, n);
    toBf16Codes(a, ad, ca, this.f32scratch('a', n));
    toBf16Codes(b, bd, cb, this.f32scratch('b', n));
    return this.kernel.diff(this.offCA, this.offCB, n, this.offW);
  }

  private f32scratch(which: 'a' | 'b', n: number): Float32Array {
    if (which === 'a') { if (this.f32a.length < n) this.f32a = new Float32Array(this.maxElems); return this.f32a.subarray(0, n); }
    if (this.f32b.length < n) this.f32b = new Float32Array(this.maxElems);
    return this.f32b.subarray(0, n);
  }

  /** Decoded values (float32 for ≤32-bit floats, float64 when either side is F64). */
  decode(a: Uint8Array, ad: DType, b: Uint8Array, bd: DType, n: number): [Float32Array | Float64Array, Float32Array | Float64Array] {
    if (ad === 'F64' || bd === 'F64') {
      if (this.f64a.length < n) { this.f64a = new Float64Array(this.maxElems); this.f64b = new Float64Array(this.maxElems); }
      return [decode64(a, ad, this.f64a.subarray(0, n), this.f32scratch('a', n)), decode64(b, bd, this.f64b.subarray(0, n), this.f32scratch('b', n))];
    }
    // fp32 needs no decoding: a view of the (4-byte aligned) bytes
    const f32 = (bytes: Uint8Array, d: DType, which: 'a' | 'b'): Float32Array => (d === 'F32' && bytes.byteOffset % 4 === 0
      ? new Float32Array(bytes.buffer, bytes.byteOffset, n)
      : decodeToFloat32(alignedCopy(bytes, d), d, this.f32scratch(which, n)));
    return [f32(a, ad, 'a'), f32(b, bd, 'b')];
  }
}

function alignedCopy(bytes: Uint8Array, d: DType): Uint8Array {
  return bytes.byteOffset % Math.min(8, ITEMSIZE[d]) === 0 ? bytes : bytes.slice();
}

function decode64(bytes: Uint8Array, d: DType, out: Float64Array, f32: Float32Array): Float64Array {
  if (d === 'F64') {
    const src = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
    out.set(new Float64Array(src.buffer, src.byteOffset, out.length));
    return out;
  }
  const v = decodeToFloat32(alignedCopy(bytes, d), d, f32);
  for (let i = 0; i < out.length; i++) out[i] = v[i]!;
  return out;
}

/** bf16 codes (RNE) of raw float bytes; NaN stays NaN (quiet, sign kept). */
function toBf16Codes(bytes: Uint8Array, d: DType, out: Uint16Array, f32: Float32Array): void {
  const n = out.length;
  if (d === 'BF16') { out.set(new Uint16Array(alignedCopy(bytes, d).buffer, alignedCopy(bytes, d).byteOffset, n)); return; }
  const v = d === 'F32' ? new Float32Array(alignedCopy(bytes, d).buffer, alignedCopy(bytes, d).byteOffset, n) : decodeToFloat32(alignedCopy(bytes, d), d, f32);
  const u = new Uint32Array(v.buffer, v.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const b = u[i]!;
    const nan = (b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0;
    out[i] = nan ? ((b >>> 16) | 0x0040) & 0xffff : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
}

/** Bit-identity of entry i across two raw buffers of the same dtype. */
function bitsEqualFn(a: Uint8Array, b: Uint8Array, d: DType): (i: number) => boolean {
  const s = ITEMSIZE[d];
  return (i: number): boolean => {
    for (let k = 0; k < s; k++) if (a[i * s + k] !== b[i * s + k]) return false;
    return true;
  };
}

/**
 * The η rule (relative) or the abs rule on decoded values, into `words`. Returns the
 * changed count and the number of non-finite entries (decided by identity, see header).
 */
export function ruleWords(
  x: Float32Array | Float64Array, y: Float32Array | Float64Array, n: number,
  rule: ProbeRule, p: ProbeOptions, words: Uint32Array,
  sameDtypeBitsEqual: ((i: number) => boolean) | null,
): { changed: number; nonFinite: number } {
  let changed = 0, nonFinite = 0;
  const eta = p.eta, tol = p.tol;
  const full = n >>> 5;
  const M = Number.MAX_VALUE;
  // Branch-free over full groups of 32 (data-dependent branches mispredict at realistic
  // change rates); a group with a non-finite entry is redone entry by entry.
  for (let g = 0; g < full; g++) {
    const base = g * 32;
    let w = 0, finite = 1;
    if (rule === 'bf16') {
      for (let j = 0; j < 32; j++) {
        const u = x[base + j]!, v = y[base + j]!;
        const au = Math.abs(u), av = Math.abs(v);
        // NaN fails every compare, ±Inf exceeds MAX_VALUE
        finite &= ((au <= M) as unknown as number) & ((av <= M) as unknown as number);
        w |= ((Math.abs(v - u) > eta * Math.max(au, av)) as unknown as number) << j;
      }
    } else {
      for (let j = 0; j < 32; j++) {
        const u = x[base + j]!, v = y[base + j]!;
        finite &= ((Math.abs(u) <= M) as unknown as number) & ((Math.abs(v) <= M) as unknown as number);
        w |= ((Math.abs(v - u) > tol) as unknown as number) << j;
      }
    }
    if (finite === 0) {
      const r = decodedGroupExact(x, y, base, 32, rule, eta, tol, sameDtypeBitsEqual);
      w = r.w;
      nonFinite += r.nonFinite;
    }
    words[g] = w;
    changed += popcnt(w);
  }
  if (full * 32 < n) {
    const r = decodedGroupExact(x, y, full * 32, n - full * 32, rule, eta, tol, sameDtypeBitsEqual);
    words[full] = r.w;
    changed += popcnt(r.w);
    nonFinite += r.nonFinite;
  }
  return { changed, nonFinite };
}

function decodedGroupExact(
  x: Float32Array | Float64Array, y: Float32Array | Float64Array, base: number, len: number,
  rule: ProbeRule, eta: number, tol: number, sameDtypeBitsEqual: ((i: number) => boolean) | null,
): { w: number; nonFinite: number } {
  let w = 0, nonFinite = 0;
  for (let j = 0; j < len; j++) {
    const i = base + j;
    const u = x[i]!, v = y[i]!;
    const au = Math.abs(u), av = Math.abs(v);
    let c: boolean;
    if (au <= Number.MAX_VALUE && av <= Number.MAX_VALUE) {
      const d = Math.abs(v - u);
      c = rule === 'bf16' ? d > eta * Math.max(au, av) : d > tol;
    } else {
      nonFinite++;
      c = !(sameDtypeBitsEqual ? sameDtypeBitsEqual(i) : (u !== u && v !== v) || u === v);
    }
    if (c) w |= 1 << j;
  }
  return { w, nonFinite };
}

let bf16Table: Float32Array | null = null;
/** bf16 code → value (exact), so the decoded rules need no decode pass. */
function bf16Values(): Float32Array {
  if (!bf16Table) {
    bf16Table = new Float32Array(65536);
    const u = new Uint32Array(bf16Table.buffer);
    for (let c = 0; c < 65536; c++) u[c] = c << 16;
  }
  return bf16Table;
}

/**
 * `ruleWords` for two bf16 buffers, reading values from a table instead of decoding (same
 * verdicts: the table holds the exact values; non-finite entries decided by bit identity).
 */
export function ruleWordsBf16(
  x: Uint16Array, y: Uint16Array, n: number, rule: ProbeRule, p: ProbeOptions, words: Uint32Array,
): { changed: number; nonFinite: number } {
  const lut = bf16Values();
  let changed = 0, nonFinite = 0;
  const eta = p.eta, tol = p.tol;
  const full = n >>> 5;
  // Branch-free over full groups of 32 (a data-dependent branch mispredicts at realistic
  // change rates); a group with any all-ones exponent is redone by the exact slow loop.
  for (let g = 0; g < full; g++) {
    const base = g * 32;
    let w = 0, nf = 0;
    if (rule === 'bf16') {
      for (let j = 0; j < 32; j++) {
        const a = x[base + j]!, b = y[base + j]!;
        nf |= (((a | b) & 0x7f80) + 0x80) & 0x8000;
        const u = lut[a]!, v = lut[b]!;
        w |= ((Math.abs(v - u) > eta * Math.max(Math.abs(u), Math.abs(v))) as unknown as number) << j;
      }
    } else {
      for (let j = 0; j < 32; j++) {
        const a = x[base + j]!, b = y[base + j]!;
        nf |= (((a | b) & 0x7f80) + 0x80) & 0x8000;
        w |= ((Math.abs(lut[b]! - lut[a]!) > tol) as unknown as number) << j;
      }
    }
    if (nf !== 0) {
      const r = groupExact(x, y, base, 32, rule, eta, tol, lut);
      w = r.w;
      nonFinite += r.nonFinite;
    }
    words[g] = w;
    changed += popcnt(w);
  }
  if (full * 32 < n) {
    const r = groupExact(x, y, full * 32, n - full * 32, rule, eta, tol, lut);
    words[full] = r.w;
    changed += popcnt(r.w);
    nonFinite += r.nonFinite;
  }
  return { changed, nonFinite };
}

/** One group entry by entry: non-finite entries decided by bit identity. */
function groupExact(x: Uint16Array, y: Uint16Array, base: number, len: number, rule: ProbeRule, eta: number, tol: number, lut: Float32Array): { w: number; nonFinite: number } {
  let w = 0, nonFinite = 0;
  for (let j = 0; j < len; j++) {
    const a = x[base + j]!, b = y[base + j]!;
    let c: boolean;
    if ((a & 0x7f80) === 0x7f80 || (b & 0x7f80) === 0x7f80) {
      nonFinite++;
      c = a !== b;
    } else {
      const u = lut[a]!, v = lut[b]!;
      const d = Math.abs(v - u);
      c = rule === 'bf16' ? d > eta * Math.max(Math.abs(u), Math.abs(v)) : d > tol;
    }
    if (c) w |= 1 << j;
  }
  return { w, nonFinite };
}

function popcnt(w: number): number {
  let v = w - ((w >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

/** NaN and ±Inf counts of raw float bytes (integer dtypes have none). */
export function countNonFinite(bytes: Uint8Array, d: DType): { nan: number; inf: number } {
  let nan = 0, inf = 0;
  const src = alignedCopy(bytes, d);
  const n = src.byteLength / ITEMSIZE[d];
  const count16 = (h: Uint16Array, expMask: number, manMask: number): void => {
    for (let i = 0; i < h.length; i++) {
      const x = h[i]!;
      if ((x & expMask) === expMask) { if ((x & manMask) === 0) inf++; else nan++; }
    }
  };
  switch (d) {
    case 'BF16': count16(new Uint16Array(src.buffer, src.byteOffset, n), 0x7f80, 0x007f); break;
    case 'F16': count16(new Uint16Array(src.buffer, src.byteOffset, n), 0x7c00, 0x03ff); break;
    case 'F32': case 'F64': case 'F8_E4M3': case 'F8_E5M2': {
      const v = d === 'F64' ? new Float64Array(src.buffer, src.byteOffset, n) : decodeToFloat32(src, d);
      for (let i = 0; i < n; i++) { const x = v[i]!; if (x !== x) nan++; else if (x === Infinity || x === -Infinity) inf++; }
      break;
    }
    default: break;
  }
  return { nan, inf };
}

/** Exact count of entries where either side is NaN/Inf (after a flagged bitwise chunk). */
export function countNonFinitePairsBf16(a: Uint8Array, b: Uint8Array, n: number): number {
  const x = new Uint16Array(alignedCopy(a, 'BF16').buffer, alignedCopy(a, 'BF16').byteOffset, n);
  const y = new Uint16Array(alignedCopy(b, 'BF16').buffer, alignedCopy(b, 'BF16').byteOffset, n);
  let c = 0;
  for (let i = 0; i < n; i++) if ((x[i]! & 0x7f80) === 0x7f80 || (y[i]! & 0x7f80) === 0x7f80) c++;
  return c;
}

/**
 * The changed-entry words of one chunk under rule `p` (`rule` overrides p.rule, e.g. for
 * --compare-probes), using the SIMD fast path when it applies. `out` receives the words
 * (ceil(n/32)); with `out` null only the counts are computed (the cheaper count kernel).
 * Returns the changed and non-finite counts.
 */
export function chunkWords(
  s: ChunkScratch, a: Uint8Array, ad: DType, b: Uint8Array, bd: DType, n: number,
  p: ProbeOptions, out: Uint32Array | null, rule: ProbeRule = p.rule,
): { changed: number; nonFinite: number } {
  if (isBitwiseFastPath(ad, bd, { ...p, rule })) {
    const r = s.bitwise(a, b, n, out !== null);
    if (out) out.set(s.kernelWords(n));
    return { changed: r.changed, nonFinite: r.nonFiniteSeen ? countNonFinitePairsBf16(a, b, n) : 0 };
  }
  if (ad === 'F32' && bd === 'F32') {
    const r = s.f32Rule(a, b, n, rule, p);
    if (r !== null) {
      if (out) out.set(s.kernelWords(n));
      return r;
    }
  }
  if (ad === 'BF16' && bd === 'BF16') {
    const x = alignedCopy(a, ad), y = alignedCopy(b, bd);
    return ruleWordsBf16(new Uint16Array(x.buffer, x.byteOffset, n), new Uint16Array(y.buffer, y.byteOffset, n), n, rule, p, out ?? s.scratchWords(n));
  }
  const [x, y] = s.decode(a, ad, b, bd, n);
  return ruleWords(x, y, n, rule, p, out ?? s.scratchWords(n), ad === bd ? bitsEqualFn(a, b, ad) : null);
}

let shared: ChunkScratch | null = null;
function sharedScratch(n: number): ChunkScratch {
  if (!shared || shared.maxElems < n) shared = new ChunkScratch(Math.max(n, 1 << 16));
  return shared;
}

/** ORs chunk words (entries from chunk index 0) into `mask` starting at flat index `start`. */
export function orWordsAt(mask: BitMask, start: number, words: Uint32Array, n: number): void {
  const mw = mask.words;
  const groups = Math.ceil(n / 32);
  const tail = n & 31;
  const sh = start & 31;
  const w0 = start >>> 5;
  for (let g = 0; g < groups; g++) {
    let w = words[g]!;
    if (g === groups - 1 && tail !== 0) w &= (1 << tail) - 1;
    if (sh === 0) { mw[w0 + g]! |= w; continue; }
    mw[w0 + g]! |= w << sh;
    const hi = w >>> (32 - sh);
    if (hi !== 0) mw[w0 + g + 1]! |= hi;
  }
}

/**
 * Marks changed entries of a chunk into `mask`, starting at flat index `start`. `base` and
 * `tuned` are raw little-endian bytes of the same number of elements.
 */
export function markChanged(
  mask: BitMask, start: number,
  base: Uint8Array, baseDtype: DType, tuned: Uint8Array, tunedDtype: DType,
  p: ProbeOptions, stats: MaskStats,
): void {
  const n = base.byteLength / ITEMSIZE[baseDtype];
  if (n === 0) return;
  const s = sharedScratch(n);
  const words = new Uint32Array(Math.ceil(n / 32));
  const r = chunkWords(s, base, baseDtype, tuned, tunedDtype, n, p, words);
  stats.nonFinite += r.nonFinite;
  orWordsAt(mask, start, words, n);
}

/**
 * The update mask of tensor `name` between two checkpoints, read in chunks (bounded memory).
 * Shapes must match (callers pair tensors first and report mismatches).
 */
export function computeUpdateMask(
  base: TensorSource, tuned: TensorSource, name: string,
  p: ProbeOptions = DEFAULT_PROBE, stats: MaskStats = { nonFinite: 0 }, chunkElems = 1 << 20,
): BitMask {
  const bi = base.info(name), ti = tuned.info(name);
  const mask = new BitMask(bi.shape);
  if (bi.numel === 0) return mask;
  chunkElems = Math.max(32, chunkElems & ~31);
  const bs = ITEMSIZE[bi.dtype], ts = ITEMSIZE[ti.dtype];
  const s = sharedScratch(Math.min(bi.numel, chunkElems));
  const words = new Uint32Array(Math.ceil(Math.min(bi.numel, chunkElems) / 32));
  for (let start = 0; start < bi.numel; start += chunkElems) {
    const n = Math.min(chunkElems, bi.numel - start);
    const a = base.readBytes(name, start * bs, n * bs, s.baseBuffer(n * bs));
    const b = tuned.readBytes(name, start * ts, n * ts, s.tunedBuffer(n * ts));
    const r = chunkWords(s, a, bi.dtype, b, ti.dtype, n, p, words);
    stats.nonFinite += r.nonFinite;
    mask.words.set(words.subarray(0, Math.ceil(n / 32)), start >>> 5);
  }
  return mask;
}
