/**
 * Principal and low-magnitude weights (paper §4.2, §5.1; SPEC §4) and the overlap of an
 * update mask with them, beside the random and the magnitude-matched baselines.
 *
 * Exact semantics (also what `rlvr-lens masks` exports, so keep them stable):
 * - `rankSelect(values, count, { order, by })` selects EXACTLY `count` entries (clamped to
 *   0..n): the `count` largest (`order: 'top'`) or smallest (`'bottom'`) by `|x|`
 *   (`by: 'abs'`, the default) or by the signed value (`by: 'value'`). Ties are broken by
 *   flat (row-major) index: among equal keys the LOWER index is selected first, for both
 *   orders, so masks are deterministic. Keys are the IEEE bit patterns (exact, no rounding):
 *   +0 and −0 tie; NaN ranks above +Inf in magnitude (so a NaN is never "low-magnitude" and
 *   is "principal" before any finite score), as in `magnitudeBins`. O(n): a 16-bit radix
 *   select on the keys, then one pass that sets the bits.
 * - `alphaCount(alpha, n)` = floor(α·n), where α·n within 1e-9 relative of an integer
 *   counts as that integer (so α = 0.29, n = 100 gives 29, not 28 from binary rounding).
 * - `principalMask(W0, k, alpha)` = M_princ = Top_α(|W0^(k)|): the rank-k reconstruction
 *   U_k Σ_k V_kᵀ of the base weight (k capped at min(rows, cols)), scored in fp32 (one fast
 *   GEMM, `reconstructFast`) or fp64 (`precision: 'fp64'`), then `rankSelect(..., 'top')`.
 *   The top-k factors come from `topKSVD` (default) or `exactSVD` (`exact: true`), or are
 *   given (`svd`, e.g. from the decomposition cache).
 * - `lowMagnitudeMask(W0, alpha)` = M_low = Bottom_α(|W0|), `rankSelect(..., 'bottom')`.
 * - `M_princ ∧ ¬M_low` = `princ.and(low.not())` (BitMask algebra).
 * - Overlap of a reference mask M• with an update mask M: |M• ∩ M| / |M|, beside the random
 *   baseline density(M•) = |M•|/n and the magnitude-matched baseline
 *   Σ_bins (#changed in bin)·density(M• in bin) / #changed over 20 equal-count bins of |W0|
 *   (`magnitudeBins`). Records keep COUNTS (`OverlapCounts`); ratios of a group of tensors
 *   pool counts (Σ overlap / Σ changed, Σ changed·density / Σ changed, ...), so aggregates
 *   are a pure function of the per-tensor records (shards merge exactly).
 */
import type { Mat, Mat64 } from '../linalg/index.js';
import { exactSVD, reconstructFast, topKSVD } from '../linalg/index.js';
import { BitMask } from './mask.js';

export type RankOrder = 'top' | 'bottom';

export interface RankSelectOptions {
  order: RankOrder;
  /** Rank by |x| (default) or by the signed value. */
  by?: 'abs' | 'value';
  /** Shape of the resulting mask (default [n]). */
  shape?: readonly number[];
}

/** floor(α·n), robust to binary rounding of α (see header). */
export function alphaCount(alpha: number, n: number): number {
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`alpha must be in [0, 1], got ${alpha}`);
  const x = alpha * n;
  const r = Math.round(x);
  return Math.abs(x - r) <= 1e-9 * Math.max(1, x) ? r : Math.floor(x);
}

/**
 * Order-preserving unsigned keys (most significant word first), turned so that the wanted
 * entries are the SMALLEST keys: for 'top' the keys are complemented.
 */
function keyWords(values: Float32Array | Float64Array, by: 'abs' | 'value', order: RankOrder): Uint32Array[] {
  const n = values.length;
  const flip = order === 'top' ? 0xffffffff : 0;
  if (values instanceof Float32Array) {
    const bits = new Uint32Array(values.buffer, values.byteOffset, n);
    const k = new Uint32Array(n);
    if (by === 'abs') for (let i = 0; i < n; i++) k[i] = ((bits[i]! & 0x7fffffff) ^ flip) >>> 0;
    else for (let i = 0; i < n; i++) { const b = bits[i]! === 0x80000000 ? 0 : bits[i]!; k[i] = ((b & 0x80000000 ? ~b : b | 0x80000000) ^ flip) >>> 0; }
    return [k];
  }
  const words = new Uint32Array(values.buffer, values.byteOffset, n * 2); // little-endian: lo, hi
  const hi = new Uint32Array(n), lo = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let h = words[2 * i + 1]!, l = words[2 * i]!;
    if (by === 'abs') h &= 0x7fffffff;
    else if (h === 0x80000000 && l === 0) { /* −0 keeps the key of +0 */ }
    else if (h & 0x80000000) { h = ~h; l = ~l; } else h |= 0x80000000;
    hi[i] = (h ^ flip) >>> 0; lo[i] = (l ^ flip) >>> 0;
  }
  return [hi, lo];
}

/**
 * Exactly `count` entries of `values` by rank (see header for order and ties), as a BitMask.
 * The input is not modified.
 */
export function rankSelect(values: Float32Array | Float64Array, count: number, o: RankSelectOptions): BitMask {
  const n = values.length;
  const shape = o.shape ?? [n];
  if (shape.reduce((a, b) => a * b, 1) !== n) throw new RangeError(`rankSelect: shape [${shape.join(', ')}] does not hold ${n} values`);
  const mask = new BitMask(shape);
  const want = Math.max(0, Math.min(n, Math.floor(count)));
  if (want === 0) return mask;
  if (want === n) { for (let i = 0; i < n; i++) mask.set(i); return mask; }
  if (values instanceof Float32Array && (o.by ?? 'abs') === 'abs') return selectF32Abs(values, want, o.order, mask);
  const keys = keyWords(values, o.by ?? 'abs', o.order);
  // Radix select the threshold key T (16-bit digits, most significant first): `need` = how
  // many entries equal to T to take after all entries < T.
  const digits = keys.length * 2;
  const T = new Uint32Array(keys.length);
  let need = want;
  let cand: Uint32Array | null = null; // indices matching the digits chosen so far (null: all)
  const hist = new Float64Array(65536);
  for (let d = 0; d < digits; d++) {
    const w = keys[d >> 1]!, shift = d & 1 ? 0 : 16;
    hist.fill(0);
    if (cand === null) for (let i = 0; i < n; i++) hist[(w[i]! >>> shift) & 0xffff]!++;
    else for (let j = 0; j < cand.length; j++) hist[(w[cand[j]!]! >>> shift) & 0xffff]!++;
    let t = 0, below = 0;
    while (below + hist[t]! < need) { below += hist[t]!; t++; }
    need -= below;
    T[d >> 1] = (T[d >> 1]! | (t << shift)) >>> 0;
    const next = new Uint32Array(hist[t]!);
    let c = 0;
    if (cand === null) { for (let i = 0; i < n; i++) if (((w[i]! >>> shift) & 0xffff) === t) next[c++] = i; }
    else for (let j = 0; j < cand.length; j++) { const i = cand[j]!; if (((w[i]! >>> shift) & 0xffff) === t) next[c++] = i; }
    cand = next;
  }
  // Entries with key < T, then the first `need` (by index) with key == T.
  const mw = mask.words;
  if (keys.length === 1) {
    const k0 = keys[0]!, t0 = T[0]!;
    for (let i = 0; i < n; i++) if (k0[i]! < t0) mw[i >>> 5]! |= 1 << (i & 31);
  } else {
    const hi = keys[0]!, lo = keys[1]!, th = T[0]!, tl = T[1]!;
    for (let i = 0; i < n; i++) { const h = hi[i]!; if (h < th || (h === th && lo[i]! < tl)) mw[i >>> 5]! |= 1 << (i & 31); }
  }
  // cand holds the indices equal to T in ascending order.
  for (let j = 0; j < need; j++) mask.set(cand![j]!);
  return mask;
}

/**
 * `rankSelect` for fp32 values by |x| (the hot case: M_princ's fp32 scores and M_low of a
 * 2-D weight, 13.8M entries for a 1.5B MLP weight) without materializing the key array: the
 * same keys, computed on the fly, the same two 16-bit digits and the same tie rule, so the
 * same mask; three passes over the data instead of five and no n-word allocation.
 */
function selectF32Abs(values: Float32Array, want: number, order: RankOrder, mask: BitMask): BitMask {
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const flip = order === 'top' ? 0xffffffff : 0; // ^ works on int32: x ^ 0xffffffff = ~x
  const hist = new Float64Array(65536);
  for (let i = 0; i < n; i++) hist[((bits[i]! & 0x7fffffff) ^ flip) >>> 16]!++;
  let need = want, t0 = 0, below = 0;
  while (below + hist[t0]! < need) { below += hist[t0]!; t0++; }
  need -= below;
  const cand = new Uint32Array(hist[t0]!); // indices whose high digit is t0, ascending
  let c = 0;
  for (let i = 0; i < n; i++) if ((((bits[i]! & 0x7fffffff) ^ flip) >>> 16) === t0) cand[c++] = i;
  hist.fill(0);
  for (let j = 0; j < c; j++) hist[((bits[cand[j]!]! & 0x7fffffff) ^ flip) & 0xffff]!++;
  let t1 = 0;
  below = 0;
  while (below + hist[t1]! < need) { below += hist[t1]!; t1++; }
  need -= below;
  const T = ((t0 << 16) | t1) >>> 0;
  // Entries with key < T, 32 at a time into each mask word ...
  const mw = mask.words;
  for (let base = 0; base < n; base += 32) {
    const e = Math.min(32, n - base);
    let w = 0;
    for (let b = 0; b < e; b++) if ((((bits[base + b]! & 0x7fffffff) ^ flip) >>> 0) < T) w |= 1 << b;
    mw[base >>> 5] = w;
  }
  // ... then the first `need` (lowest indices) with key == T.
  for (let j = 0, taken = 0; j < c && taken < need; j++) {
    const i = cand[j]!;
    if ((((bits[i]! & 0x7fffffff) ^ flip) & 0xffff) === t1) { mw[i >>> 5]! |= 1 << (i & 31); taken++; }
  }
  return mask;
}

/** Top_α / Bottom_α of |values| with floor(α·n) entries. */
export function selectFraction(values: Float32Array | Float64Array, alpha: number, order: RankOrder, shape?: readonly number[]): BitMask {
  return rankSelect(values, alphaCount(alpha, values.length), { order, by: 'abs', ...(shape ? { shape } : {}) });
}

/** Top-k factors of a base weight (any source: topKSVD, exactSVD, the cache). */
export interface Factors { U: Mat64; S: Float64Array | readonly number[]; V: Mat64 }

export interface PrincipalOptions {
  /** Factors to use instead of computing them (at least k columns). */
  svd?: Factors;
  /** Dense fp64 SVD (slow beyond ~1000 columns) instead of the randomized top-k. */
  exact?: boolean;
  /** Score precision: the fp32 GEMM (default) or fp64. */
  precision?: 'fp32' | 'fp64';
  threads?: number;
  seed?: number;
}

/** k capped at the matrix rank bound min(rows, cols). */
export function effectiveK(k: number, rows: number, cols: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  return Math.min(k, rows, cols);
}

/** The scores |W0^(k)| come from this signed rank-k reconstruction (row-major, rows×cols). */
export async function rankKReconstruction(W0: Mat, k: number, o: PrincipalOptions = {}): Promise<Float32Array | Float64Array> {
  const kk = effectiveK(k, W0.rows, W0.cols);
  const f = o.svd ?? (o.exact ? exactSVD(W0) : await topKSVD(W0, kk, { threads: o.threads ?? 1, seed: o.seed ?? 0 }));
  if (f.U.cols < kk || f.V.cols < kk || f.S.length < kk) throw new RangeError(`principalMask: factors have ${f.S.length} singular values, need ${kk}`);
  const r = await reconstructFast(f.U, f.S, f.V, { k: kk, precision: o.precision ?? 'fp32', threads: o.threads ?? 1 });
  return r.data;
}

/** M_princ = Top_α(|W0^(k)|), exactly floor(α·n) entries (see header). */
export async function principalMask(W0: Mat, k: number, alpha: number, o: PrincipalOptions = {}): Promise<BitMask> {
  const scores = await rankKReconstruction(W0, k, o);
  return selectFraction(scores, alpha, 'top', [W0.rows, W0.cols]);
}

/** M_low = Bottom_α(|W0|), exactly floor(α·n) entries (see header). */
export function lowMagnitudeMask(W0: Mat | { rows: number; cols: number; data: Float32Array | Float64Array }, alpha: number): BitMask {
  return selectFraction(W0.data, alpha, 'bottom', [W0.rows, W0.cols]);
}

// ---------------------------------------------------------------------------------------
// Overlap with an update mask
// ---------------------------------------------------------------------------------------

/** Set bits of `mask` per magnitude bin (bins[i] in 0..numBins-1). */
export function countPerBin(mask: BitMask, bins: Uint8Array, numBins: number): Float64Array {
  const out = new Float64Array(numBins);
  const w = mask.words;
  for (let g = 0; g < w.length; g++) {
    let x = w[g]!;
    while (x !== 0) {
      const b = 31 - Math.clz32(x & -x);
      out[bins[g * 32 + b]!]!++;
      x &= x - 1;
    }
  }
  return out;
}

/** Entries per bin. */
export function magnitudeBinSizes(bins: Uint8Array, numBins: number): Float64Array {
  const out = new Float64Array(numBins);
  for (let i = 0; i < bins.length; i++) out[bins[i]!]!++;
  return out;
}

/** Counts behind one overlap (all ratios are derived from these; see `overlapRatios`). */
export interface OverlapCounts {
  /** n, entries of the tensor. */
  entries: number;
  /** |M•|, entries of the reference mask. */
  reference: number;
  /** |M|, changed entries. */
  changed: number;
  /** |M• ∩ M|. */
  overlap: number;
  /** Σ_bins changed_b · |M• ∩ bin_b| / |bin_b| (expected |M• ∩ M| given the per-bin change counts). */
  magnitudeMatched: number;
}

/** Reference-side bin counts, computed once per reference mask and reused for every tuned model. */
export interface ReferenceBins { reference: number; perBin: Float64Array; sizes: Float64Array }

export function referenceBins(ref: BitMask, bins: Uint8Array, sizes: Float64Array): ReferenceBins {
  return { reference: ref.count(), perBin: countPerBin(ref, bins, sizes.length), sizes };
}

/** Overlap counts of reference `ref` with update mask `update`, `changedPerBin` = countPerBin(update, bins). */
export function overlapCounts(ref: BitMask, refBins: ReferenceBins, update: BitMask, changedPerBin: Float64Array): OverlapCounts {
  let mm = 0;
  for (let b = 0; b < refBins.sizes.length; b++) {
    const size = refBins.sizes[b]!;
    if (size > 0) mm += changedPerBin[b]! * (refBins.perBin[b]! / size);
  }
  let changed = 0;
  for (let b = 0; b < changedPerBin.length; b++) changed += changedPerBin[b]!;
  return { entries: ref.length, reference: refBins.reference, changed, overlap: ref.andCount(update), magnitudeMatched: mm };
}

export interface OverlapRatios {
  /** |M• ∩ M| / |M| (null when nothing changed). */
  overlap: number | null;
  /** Random baseline: Σ|M|·density(M•) / Σ|M| (= density(M•) for one tensor). */
  random: number | null;
  /** Magnitude-matched baseline. */
  magnitudeMatched: number | null;
  /** overlap − magnitudeMatched: the evidence of geometry beyond magnitude. */
  gapToMagnitude: number | null;
  /** |M•| / n over the group. */
  density: number;
}

/** Ratios of one tensor or a pooled group (counts summed; random baseline weighted by |M|). */
export function overlapRatios(counts: readonly OverlapCounts[]): OverlapRatios {
  let ch = 0, ov = 0, rnd = 0, mm = 0, ref = 0, n = 0;
  for (const c of counts) {
    ch += c.changed; ov += c.overlap; mm += c.magnitudeMatched; ref += c.reference; n += c.entries;
    rnd += c.entries > 0 ? c.changed * (c.reference / c.entries) : 0;
  }
  const r = (x: number): number | null => (ch > 0 ? x / ch : null);
  const o = r(ov), m = r(mm);
  return { overlap: o, random: r(rnd), magnitudeMatched: m, gapToMagnitude: o !== null && m !== null ? o - m : null, density: n > 0 ? ref / n : 0 };
}
