/**
 * Where updates land across runs (paper §2.2, Table 2, Fig. 2; SPEC §2 and §4).
 *
 * For R runs tuned from one base, per tensor: the R×R Jaccard matrix of update masks, its
 * mean off-diagonal, two baselines, and the consensus map C = (1/R) Σ_r M^(r).
 *
 * Baselines (each stated in every output, see LOCALITY_FORMULAS):
 * - independent Bernoulli: E[J] = p·q / (p + q − p·q) with p, q the two mask densities;
 * - magnitude-matched: split the tensor's entries into equal-count bins of |W0| (ranked by
 *   (|w0|, flat index), `magnitudeBins`); if each run changed entries independently with its
 *   per-bin change rate p_b, q_b, then E|A∩B| = Σ_b n_b p_b q_b and
 *   E|A∪B| = Σ_b n_b (p_b + q_b − p_b q_b); the baseline is E|A∩B| / E|A∪B| (a ratio of
 *   expectations, exact as n → ∞).
 *
 * Groups of tensors (a layer, a module kind, a layer × kind cell) are pooled, as if the
 * group were one concatenated mask: J = Σ_t |A_t∩B_t| / Σ_t |A_t∪B_t|, and each baseline
 * is the same ratio of summed expectations, with each tensor (and bin) keeping its own
 * densities. For a single tensor this reduces to the formulas above.
 *
 * Each checkpoint is read once, by the sparsity probe's single pass (`forEachTensorMasks`);
 * only the R masks of the current tensor are held, plus per-tensor summaries and the
 * (pooled) consensus images that were asked for.
 */
import { FormatError, UsageError } from '../errors.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { type Cell, type Table, envelope } from '../report/output.js';
import type { TensorSource } from '../io/checkpoint.js';
import { type DType, u16View } from '../io/dtype.js';
import { type ModuleKind, isLinearWeight, parseTensorName } from '../model/names.js';
import { BitMask, popcount32 } from './mask.js';
import { magnitudeBins } from './magnitude.js';
import { type SparsityDoc, updateSparsity } from './sparsity.js';
import { DEFAULT_PROBE, type MaskStats, type ProbeOptions, markChanged } from './update.js';
import { type ChangeRateAccumulator, type ChangeRateResult, addChangeRateSlots, finishChangeRate, newChangeRateAccumulator } from './changerate.js';
import { type ProfileRequest, type TensorProfile, summarizeTensor } from './locality-tensor.js';
import { forEachPatternPosition } from './profile-kernel.js';

export const LOCALITY_FORMULAS = {
  jaccard: 'J(A,B) = |A∩B| / |A∪B| (undefined, reported null, when both masks are empty)',
  bernoulli: 'E[J] = p·q / (p + q − p·q), p and q the two mask densities; groups: Σ_t n_t p_t q_t / Σ_t n_t (p_t + q_t − p_t q_t)',
  magnitudeMatched: 'E|A∩B| / E|A∪B| with E|A∩B| = Σ_b n_b p_b q_b, E|A∪B| = Σ_b n_b (p_b + q_b − p_b q_b) over equal-count |W0| bins b (per tensor, ties by flat index), p_b, q_b the per-bin change rates of the two runs',
  mean: 'mean over the R(R−1)/2 unordered pairs r<s of pooled J(r,s); baselines averaged over the same pairs; ratio = mean observed / mean baseline',
  consensus: 'C_ij = (1/R) Σ_r M^(r)_ij',
} as const;

// ---------------------------------------------------------------------------------------
// Pure measurements on masks
// ---------------------------------------------------------------------------------------

/** J(A,B) = |A∩B|/|A∪B|; NaN when both are empty (the ratio is undefined). */
export function jaccard(a: BitMask, b: BitMask): number {
  const u = a.orCount(b);
  return u === 0 ? NaN : a.andCount(b) / u;
}

/** Expected Jaccard of independent Bernoulli masks with densities p, q (NaN when p = q = 0). */
export function bernoulliJaccard(p: number, q: number): number {
  const u = p + q - p * q;
  return u === 0 ? NaN : (p * q) / u;
}

/** Expected |A∩B| and |A∪B| of independent per-bin Bernoulli masks (counts, not densities). */
export function magnitudeMatchedExpectation(
  binSize: ArrayLike<number>, changedA: ArrayLike<number>, changedB: ArrayLike<number>,
): { intersection: number; union: number } {
  let inter = 0, union = 0;
  for (let b = 0; b < binSize.length; b++) {
    const n = binSize[b]!;
    if (n === 0) continue;
    const p = changedA[b]! / n, q = changedB[b]! / n;
    inter += n * p * q;
    union += n * (p + q - p * q);
  }
  return { intersection: inter, union };
}

/** Magnitude-matched expected Jaccard E|A∩B| / E|A∪B| (NaN when both masks are empty). */
export function magnitudeMatchedJaccard(binSize: ArrayLike<number>, changedA: ArrayLike<number>, changedB: ArrayLike<number>): number {
  const e = magnitudeMatchedExpectation(binSize, changedA, changedB);
  return e.union === 0 ? NaN : e.intersection / e.union;
}

/** Number of set mask bits falling in each bin (bins[i] = bin of flat entry i). */
export function changedPerBin(mask: BitMask, bins: Uint8Array, numBins: number): Float64Array {
  const out = new Float64Array(numBins);
  const w = mask.words;
  for (let k = 0; k < w.length; k++) {
    let x = w[k]!;
    while (x !== 0) {
      const low = x & -x;
      const bit = 31 - Math.clz32(low);
      out[bins[(k << 5) + bit]!]!++;
      x ^= low;
    }
  }
  return out;
}

/** Entries per bin. */
export function binSizes(bins: Uint8Array, numBins: number): Float64Array {
  const out = new Float64Array(numBins);
  for (let i = 0; i < bins.length; i++) out[bins[i]!]!++;
  return out;
}

/** R×R Jaccard matrix (diagonal 1 for non-empty masks, NaN for empty ones). */
export function jaccardMatrix(masks: readonly BitMask[]): number[][] {
  const R = masks.length;
  const J = Array.from({ length: R }, () => new Array<number>(R).fill(NaN));
  for (let r = 0; r < R; r++) {
    J[r]![r] = masks[r]!.count() === 0 ? NaN : 1;
    for (let s = r + 1; s < R; s++) J[r]![s] = J[s]![r] = jaccard(masks[r]!, masks[s]!);
  }
  return J;
}

/** Mean of the finite off-diagonal entries r<s (NaN when there are none). */
export function meanOffDiagonal(J: readonly (readonly number[])[]): number {
  let s = 0, n = 0;
  for (let r = 0; r < J.length; r++) for (let c = r + 1; c < J.length; c++) {
    const v = J[r]![c]!;
    if (Number.isFinite(v)) { s += v; n++; }
  }
  return n === 0 ? NaN : s / n;
}

/** Per-entry count of runs that changed it (0..R); C = counts / R. R must be ≤ 255. */
export function consensusCounts(masks: readonly BitMask[]): Uint8Array {
  if (masks.length === 0) throw new RangeError('consensusCounts: no masks');
  if (masks.length > 255) throw new RangeError('consensusCounts: at most 255 runs');
  const n = masks[0]!.length;
  const out = new Uint8Array(n);
  for (const m of masks) {
    if (m.length !== n) throw new RangeError('consensusCounts: masks differ in length');
    const w = m.words;
    for (let k = 0; k < w.length; k++) {
      let x = w[k]!;
      while (x !== 0) {
        const low = x & -x;
        out[(k << 5) + 31 - Math.clz32(low)]!++;
        x ^= low;
      }
    }
  }
  return out;
}

/** The consensus map C = (1/R) Σ_r M^(r) as floats (one tensor; prefer counts for big ones). */
export function consensusMap(masks: readonly BitMask[]): Float32Array {
  const c = consensusCounts(masks);
  const out = new Float32Array(c.length);
  const R = masks.length;
  for (let i = 0; i < c.length; i++) out[i] = c[i]! / R;
  return out;
}

/** hist[k] = number of entries changed by exactly k of the R runs, k = 0..R. */
export function consensusHistogram(counts: Uint8Array, R: number): number[] {
  const h = new Array<number>(R + 1).fill(0);
  for (let i = 0; i < counts.length; i++) h[counts[i]!]!++;
  return h;
}

/**
 * hist[k] = entries changed by exactly k of the R masks, computed word-wise (bit-sliced
 * counters, no per-entry loop); equals consensusHistogram(consensusCounts(masks), R).
 */
export function consensusHistogramOf(masks: readonly BitMask[]): number[] {
  const R = masks.length;
  if (R === 0 || R > 255) throw new RangeError('consensusHistogramOf: 1..255 masks');
  const n = masks[0]!.length;
  const nw = masks[0]!.words.length;
  const planes = Math.max(1, Math.ceil(Math.log2(R + 1)));
  const h = new Array<number>(R + 1).fill(0);
  const p = new Int32Array(planes);
  for (let k = 0; k < nw; k++) {
    p.fill(0);
    for (let r = 0; r < R; r++) {
      let carry = masks[r]!.words[k]! | 0;
      for (let b = 0; b < planes && carry !== 0; b++) { const c = p[b]! & carry; p[b] = p[b]! ^ carry; carry = c; }
    }
    for (let c = 0; c <= R; c++) {
      let m = -1;
      for (let b = 0; b < planes; b++) m &= (c >> b) & 1 ? p[b]! : ~p[b]!;
      h[c]! += popcount32(m);
    }
  }
  h[0]! -= nw * 32 - n; // padding bits past the end count as "no run"
  return h;
}

/** Magnitude structure of one bf16 tensor and where R masks' changes fall in it. */
export interface MagnitudeProfile {
  /** Entries per equal-count |W0| bin (as `magnitudeBins`). */
  binSize: Float64Array;
  /** Changed entries per bin, per run. */
  perBin: Float64Array[];
  /** Entries per 15-bit magnitude pattern, and changed entries per pattern per run. */
  patternTotal: Uint32Array;
  patternChanged: Uint32Array[];
  /** hist[k] = entries changed by exactly k runs (computed in the same pass when R ≤ 8). */
  consensusHistogram?: number[];
}

/**
 * Per-bin change counts of R masks over the equal-count |W0| bins of a bf16 tensor, the
 * same bins `magnitudeBins` assigns (rank by (|w0| pattern, flat index)), without building
 * the per-entry bin array: one pass counts the 15-bit magnitude patterns, one pass per run
 * over its set bits counts changed entries per pattern, and only the few patterns that
 * straddle a bin boundary are revisited in index order. The pattern histograms also give
 * the change rate per binade (`accumulateChangeRatePatterns`).
 */
export function bf16MagnitudeProfile(bytes: Uint8Array, masks: readonly BitMask[], numBins: number): MagnitudeProfile {
  const h = u16View(bytes);
  const pc = bf16PatternCounts(h, masks);
  return { ...magnitudeProfileFromPatterns(h, masks, pc.total, pc.changed, numBins), consensusHistogram: pc.consensus };
}

/**
 * Histograms over the raw 15-bit pattern of a bf16 tensor: entries per pattern and changed
 * entries per pattern per run (one JS pass per 8 runs; see patternKernel), plus the
 * consensus histogram when R ≤ 8. (The locality pass gets the same counts from the fused
 * WebAssembly kernel of ./profile-kernel.ts instead.)
 */
export function bf16PatternCounts(h: Uint16Array, masks: readonly BitMask[]): { total: Uint32Array; changed: Uint32Array[]; consensus?: number[] } {
  const K = 32768;
  const R = masks.length;
  const total = new Uint32Array(K);
  const changed = masks.map(() => new Uint32Array(K));
  let consensus: number[] | undefined;
  for (let g = 0; g < R; g += 8) {
    const group = masks.slice(g, g + 8);
    const L = group.length;
    const out = patternKernel(L)(h, group.map((m) => m.words), g === 0 ? total : new Uint32Array(K));
    group.forEach((_, j) => { const c = changed[g + j]!; for (let m = 0; m < K; m++) c[m] = out.hist[m * L + j]!; });
    if (R <= 8) consensus = Array.from(out.consensus);
  }
  return { total, changed, consensus };
}

/** Merges the NaN patterns 0x7f81..0x7ffe into 0x7fff in place (magnitudeBins ranks NaNs as one group, last). */
export function mergeNanPatterns(total: Uint32Array, changed: readonly Uint32Array[]): void {
  for (let m = 0x7f81; m < 0x7fff; m++) {
    if (total[m] === 0) continue;
    total[0x7fff]! += total[m]!; total[m] = 0;
    for (const c of changed) { c[0x7fff]! += c[m]!; c[m] = 0; }
  }
}

/** Per-bin sizes and per-run changed counts of a bf16 tensor, with its pattern histograms. */
export type MagnitudeBinCounts = Omit<MagnitudeProfile, 'consensusHistogram'>;

/** Which patterns fall wholly in one equal-count bin, and which straddle bin boundaries. */
export interface BinLayout {
  /** pattern, bin, pattern, bin, … of every non-empty pattern inside one bin. */
  whole: number[];
  /** Straddling patterns: ranks [s, s + count), bins b0..b1, and the occurrence index (in
   * index order) at which each of bins b0+1..b1 starts. */
  strad: { m: number; s: number; b0: number; b1: number; cuts: number[] }[];
  /** The merged NaN pattern straddles a boundary (callers then walk the masks instead). */
  nanStraddles: boolean;
}

/**
 * The bin layout of a tensor of n entries from its (NaN-merged) pattern histogram, with
 * bin = floor(rank · numBins / n) over ranks by (|w0| pattern, flat index), as magnitudeBins.
 */
export function binLayout(total: Uint32Array, n: number, numBins: number): BinLayout {
  const binOf = (rank: number): number => Math.floor((rank * numBins) / n);
  const firstRankOf = (b: number): number => {
    let r = Math.ceil((b * n) / numBins);
    while (r > 0 && binOf(r - 1) >= b) r--;
    while (binOf(r) < b) r++;
    return r;
  };
  const lay: BinLayout = { whole: [], strad: [], nanStraddles: false };
  for (let m = 0, s = 0; m < total.length; m++) {
    const c = total[m]!;
    if (c > 0) {
      const b0 = binOf(s), b1 = binOf(s + c - 1);
      if (b0 === b1) lay.whole.push(m, b0);
      else {
        const cuts: number[] = [];
        for (let b = b0 + 1; b <= b1; b++) cuts.push(firstRankOf(b) - s);
        lay.strad.push({ m, s, b0, b1, cuts });
        if (m === 0x7fff) lay.nanStraddles = true;
      }
    }
    s += c;
  }
  return lay;
}

/**
 * The equal-count |W0| bins from a bf16 tensor's pattern histograms (`total`, `changed`;
 * NaN patterns > 0x7f80 are merged into 0x7fff IN PLACE, which is where magnitudeBins ranks
 * them: last, by index). Patterns whose entries straddle a bin boundary are split by an
 * index-order walk over the base (`h`) and the masks.
 */
export function magnitudeProfileFromPatterns(
  h: Uint16Array, masks: readonly BitMask[], total: Uint32Array, changed: Uint32Array[], numBins: number,
): Omit<MagnitudeProfile, 'consensusHistogram'> {
  const K = 32768;
  const R = masks.length;
  mergeNanPatterns(total, changed);
  const binSize = new Float64Array(numBins);
  const perBin = masks.map(() => new Float64Array(numBins));
  const lay = binLayout(total, h.length, numBins);
  for (let q = 0; q < lay.whole.length; q += 2) {
    const m = lay.whole[q]!, b = lay.whole[q + 1]!;
    binSize[b]! += total[m]!;
    for (let r = 0; r < R; r++) perBin[r]![b]! += changed[r]![m]!;
  }
  const strad = lay.strad;
  if (strad.length > 0) {
    // Walk the entries in index order; a straddler's entries are counted into their bins
    // one by one only until its last boundary, the rest (its last bin) follows from its totals.
    const S = strad.length; // ≤ numBins − 1 ≤ 255: ids fit a byte
    const table = new Uint8Array(K); // straddler id + 1 per pattern, 0 = none
    strad.forEach((x, j) => { table[x.m] = j + 1; });
    if (table[0x7fff]! > 0) table.fill(table[0x7fff]!, 0x7f81, 0x7fff); // NaN patterns rank as one
    const cur = new Int32Array(S), nextCut = new Float64Array(S);
    strad.forEach((x, j) => { cur[j] = x.b0; nextCut[j] = x.cuts[0]!; });
    /** Occurrence index at which straddler j enters bin b (b0 < b ≤ b1). */
    const cutOf = (j: number, b: number): number => strad[j]!.cuts[b - strad[j]!.b0 - 1]!;
    // Flat per-bin counts (bin·(R+1) + r for runs, + R for entries) filled by the kernel.
    const pb = new Float64Array(numBins * (R + 1));
    const countedN = new Float64Array(S), countedC = new Float64Array(S * R);
    const state = new Float64Array(1 + S);
    state[0] = S;
    const done = new Uint8Array(S);
    const kernel = straddleKernel(R), words = masks.map((m) => m.words), lastBin = strad.map((x) => x.b1);
    forEachPatternPosition(h, table, 0, (pos, ids, np) => kernel(words, pos, ids, np, state, done, cur, nextCut, lastBin, pb, countedN, countedC, cutOf));
    for (let b = 0; b < numBins; b++) {
      binSize[b]! += pb[b * (R + 1) + R]!;
      for (let r = 0; r < R; r++) perBin[r]![b]! += pb[b * (R + 1) + r]!;
    }
    strad.forEach((x, j) => {
      binSize[x.b1]! += total[x.m]! - countedN[j]!;
      for (let r = 0; r < R; r++) perBin[r]![x.b1]! += changed[r]![x.m]! - countedC[j * R + r]!;
    });
  }
  return { binSize, perBin, patternTotal: total, patternChanged: changed };
}

type PatternKernel = (h: Uint16Array, words: readonly Uint32Array[], total: Uint32Array) => { hist: Uint32Array; consensus: Float64Array };
const kernels = new Map<number, PatternKernel>();

/**
 * One pass over the entries for L ≤ 8 masks: hist[pattern·L + j] += bit j of the entry,
 * total[pattern]++, consensus[Σ bits]++. Branch-free per entry; the body is generated once
 * per L with the lanes unrolled (a loop over lanes, or fixed 8 lanes with zero padding,
 * measured 2× slower). The generated source depends only on the integer L.
 */
function patternKernel(L: number): PatternKernel {
  if (!Number.isInteger(L) || L < 1 || L > 8) throw new RangeError('patternKernel: 1..8 lanes');
  let k = kernels.get(L);
  if (k) return k;
  const lanes = Array.from({ length: L }, (_, r) => r);
  const body = `
    const n = h.length, nw = Math.ceil(n / 32);
    const hist = new Uint32Array(32768 * ${L});
    const consensus = new Float64Array(${L + 1});
    ${lanes.map((r) => `const W${r} = words[${r}];`).join(' ')}
    for (let k = 0; k < nw; k++) {
      ${lanes.map((r) => `const a${r} = W${r}[k];`).join(' ')}
      const off = k << 5;
      const end = Math.min(32, n - off);
      for (let j = 0; j < end; j++) {
        const key = h[off + j] & 0x7fff;
        const b = key * ${L};
        ${lanes.map((r) => `const b${r} = (a${r} >>> j) & 1; hist[b + ${r}] += b${r};`).join(' ')}
        total[key]++;
        consensus[${lanes.map((r) => `b${r}`).join(' + ')}]++;
      }
    }
    return { hist, consensus };`;
  k = new Function('h', 'words', 'total', body) as PatternKernel;
  kernels.set(L, k);
  return k;
}

type StraddleKernel = (
  words: readonly Uint32Array[], pos: Int32Array, ids: Uint8Array, np: number, state: Float64Array, done: Uint8Array, cur: Int32Array,
  nextCut: Float64Array, lastBin: readonly number[], pb: Float64Array, countedN: Float64Array,
  countedC: Float64Array, cutOf: (j: number, b: number) => number,
) => boolean;
const straddleKernels = new Map<number, StraddleKernel>();

/**
 * The index-order walk over straddling patterns (see magnitudeProfileFromPatterns), lanes
 * unrolled per run count R like patternKernel, over the positions `pos[0..np)` of straddler
 * entries (ascending) and their straddler ids + 1 (`ids`; both from `forEachPatternPosition`):
 * each straddler entry before its pattern's last bin boundary is counted into its bin
 * (pb[bin·(R+1) + r] per run, + R for entries); once a pattern reaches its last bin it is
 * dropped (done) and its remainder is added from totals. state = [straddlers still active,
 * then per straddler: entries seen].
 * Returns whether any straddler is still active.
 */
function straddleKernel(R: number): StraddleKernel {
  if (!Number.isInteger(R) || R < 1 || R > 255) throw new RangeError('straddleKernel: 1..255 runs');
  let k = straddleKernels.get(R);
  if (k) return k;
  const lanes = Array.from({ length: Math.min(R, 8) }, (_, r) => r);
  const unrolled = R <= 8;
  const body = `
    ${unrolled ? lanes.map((r) => `const W${r} = words[${r}];`).join(' ') : ''}
    let active = state[0];
    for (let q = 0; q < np && active > 0; q++) {
      const j = ids[q] - 1;
      if (done[j] !== 0) continue;
      const i = pos[q];
      const o = state[1 + j]++;
      if (o === nextCut[j]) {
        const nb = ++cur[j];
        if (nb === lastBin[j]) {
          done[j] = 1;
          active--;
          continue;
        }
        nextCut[j] = cutOf(j, nb + 1);
      }
      const base = cur[j] * ${R + 1};
      pb[base + ${R}]++;
      countedN[j]++;
      const w = i >>> 5, sh = i & 31;
      ${unrolled
    ? lanes.map((r) => `{ const bit = (W${r}[w] >>> sh) & 1; pb[base + ${r}] += bit; countedC[j * ${R} + ${r}] += bit; }`).join('\n      ')
    : `for (let r = 0; r < ${R}; r++) { const bit = (words[r][w] >>> sh) & 1; pb[base + r] += bit; countedC[j * ${R} + r] += bit; }`}
    }
    state[0] = active;
    return active > 0;`;
  k = new Function('words', 'pos', 'ids', 'np', 'state', 'done', 'cur', 'nextCut', 'lastBin', 'pb', 'countedN', 'countedC', 'cutOf', body) as StraddleKernel;
  straddleKernels.set(R, k);
  return k;
}

/** A dense 2-D grid of values (row-major), e.g. a pooled mask or consensus map. */
export interface Grid {
  rows: number;
  cols: number;
  values: Float32Array;
  /** Block size each value averages: [rows per block, cols per block]. */
  pool: [number, number];
  /** Shape of the full-resolution tensor. */
  sourceShape: [number, number];
}

/**
 * Pools a rows×cols array given as `valueAt(flatIndex)` (or a BitMask) to at most
 * maxRows×maxCols by the MEAN over p×q blocks, p = ceil(rows/maxRows), q = ceil(cols/maxCols)
 * (edge blocks may be smaller; their mean is over the entries they hold). p = q = 1 is full
 * resolution.
 */
export function poolGrid(
  rows: number, cols: number, source: BitMask | Uint8Array | Float32Array, maxRows: number, maxCols: number, scale = 1,
): Grid {
  const p = Math.max(1, Math.ceil(rows / Math.max(1, maxRows)));
  const q = Math.max(1, Math.ceil(cols / Math.max(1, maxCols)));
  const gr = Math.ceil(rows / p), gc = Math.ceil(cols / q);
  const sum = new Float64Array(gr * gc);
  const cnt = new Float64Array(gr * gc);
  const colBlock = new Int32Array(cols);
  for (let c = 0; c < cols; c++) colBlock[c] = Math.floor(c / q);
  for (let r = 0; r < rows; r++) {
    const rowBase = Math.floor(r / p) * gc;
    const off = r * cols;
    if (source instanceof BitMask) {
      const w = source.words;
      for (let c = 0; c < cols; c++) {
        const i = off + c;
        const g = rowBase + colBlock[c]!;
        sum[g]! += (w[i >>> 5]! >>> (i & 31)) & 1;
        cnt[g]!++;
      }
    } else {
      for (let c = 0; c < cols; c++) {
        const g = rowBase + colBlock[c]!;
        sum[g]! += source[off + c]!;
        cnt[g]!++;
      }
    }
  }
  const values = new Float32Array(gr * gc);
  for (let g = 0; g < values.length; g++) values[g] = cnt[g]! === 0 ? NaN : (sum[g]! / cnt[g]!) * scale;
  return { rows: gr, cols: gc, values, pool: [p, q], sourceShape: [rows, cols] };
}

/** A mask pooled to at most side×side cells, quantised to bytes (the report's heatmaps). */
export interface PooledMask { size: [number, number]; pool: [number, number]; bytes: Uint8Array }

/** Pools one mask to at most side×side pixels and quantises: byte = round(255 · fraction changed). */
export function poolMask(mask: BitMask, side: number): PooledMask {
  const [rows, cols] = matrixShape(mask.shape);
  const g = poolGrid(rows, cols, mask, side, side);
  const bytes = new Uint8Array(g.values.length);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.round(255 * (Number.isFinite(g.values[i]!) ? g.values[i]! : 0));
  return { size: [g.rows, g.cols], pool: g.pool, bytes };
}

/** "Full resolution" images are pooled beyond this many cells per side (the caption says so). */
export const MAX_IMAGE_SIDE = 8192;

/** Rows × cols of a tensor shape (1-D tensors are one row). */
export function matrixShape(shape: readonly number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  if (shape.length === 1) return [1, shape[0]!];
  const rows = shape[0]!;
  return [rows, shape.slice(1).reduce((a, b) => a * b, 1)];
}

// ---------------------------------------------------------------------------------------
// Per-tensor summary
// ---------------------------------------------------------------------------------------

/** Sums for one unordered pair of runs over one tensor (enough to pool over groups). */
export interface PairSums {
  r: number;
  s: number;
  intersection: number;
  union: number;
  /** Expected |A∩B|, |A∪B| under independent Bernoulli masks with the tensor's densities. */
  bernoulliIntersection: number;
  bernoulliUnion: number;
  /** Same under per-|W0|-bin Bernoulli masks (null when bins were not computed). */
  magnitudeIntersection: number | null;
  magnitudeUnion: number | null;
}

export interface TensorLocality {
  name: string;
  layer: number | null;
  kind: ModuleKind;
  shape: number[];
  numel: number;
  /** Changed entries per run. */
  changed: number[];
  /** Density (changed fraction) per run. */
  density: number[];
  /** R×R Jaccard matrix. */
  jaccard: number[][];
  pairs: PairSums[];
  meanJaccard: number;
  meanBernoulli: number;
  meanMagnitudeMatched: number;
  ratioBernoulli: number;
  ratioMagnitudeMatched: number;
  /** hist[k] = entries changed by exactly k runs, k = 0..R. */
  consensusHistogram: number[];
  /** Entries changed by all R runs / numel, and its independent expectation Π_r p_r. */
  allRunsFraction: number;
  allRunsExpected: number;
  /** Entries with NaN/Inf per run (never silently counted). */
  nonFinite: number[];
}

/**
 * Locality summary of one tensor from its R masks and (optionally) the magnitude bins of
 * its base weight. Pure; `counts` (per-entry consensus counts) or `joint` (entries per run
 * mask, index m with bit r = changed by run r, as the fused kernel counts them) may be
 * passed when already computed: `joint` gives the changed counts, every |A∩B| and the
 * consensus histogram without touching the masks again.
 */
export function tensorLocality(
  name: string, masks: readonly BitMask[],
  bins: Uint8Array | { binSize: ArrayLike<number>; perBin: readonly ArrayLike<number>[]; consensusHistogram?: number[] } | null, numBins: number,
  nonFinite: readonly number[] = masks.map(() => 0), counts?: Uint8Array, joint?: Float64Array,
): TensorLocality {
  const R = masks.length;
  const parsed = parseTensorName(name);
  const shape = [...masks[0]!.shape];
  const numel = masks[0]!.length;
  if (joint && joint.length !== 1 << R) throw new RangeError(`tensorLocality: joint counts for ${Math.log2(joint.length)} runs, ${R} masks`);
  const jointSum = (bits: number): number => { let c = 0; for (let m = 0; m < joint!.length; m++) if ((m & bits) === bits) c += joint![m]!; return c; };
  const changed = joint ? masks.map((_, r) => jointSum(1 << r)) : masks.map((m) => m.count());
  const density = changed.map((c) => (numel === 0 ? 0 : c / numel));
  const sizes = bins === null ? null : bins instanceof Uint8Array ? binSizes(bins, numBins) : bins.binSize;
  const perBin = bins === null ? null : bins instanceof Uint8Array ? masks.map((m) => changedPerBin(m, bins, numBins)) : bins.perBin;
  const J = Array.from({ length: R }, () => new Array<number>(R).fill(NaN));
  const pairs: PairSums[] = [];
  for (let r = 0; r < R; r++) {
    J[r]![r] = changed[r]! === 0 ? NaN : 1;
    for (let s = r + 1; s < R; s++) {
      const inter = joint ? jointSum((1 << r) | (1 << s)) : masks[r]!.andCount(masks[s]!);
      const union = changed[r]! + changed[s]! - inter;
      J[r]![s] = J[s]![r] = union === 0 ? NaN : inter / union;
      const p = density[r]!, q = density[s]!;
      const mm = sizes && perBin ? magnitudeMatchedExpectation(sizes, perBin[r]!, perBin[s]!) : null;
      pairs.push({
        r, s, intersection: inter, union,
        bernoulliIntersection: numel * p * q, bernoulliUnion: numel * (p + q - p * q),
        magnitudeIntersection: mm ? mm.intersection : null, magnitudeUnion: mm ? mm.union : null,
      });
    }
  }
  const given = bins !== null && !(bins instanceof Uint8Array) ? bins.consensusHistogram : undefined;
  const hist = counts ? consensusHistogram(counts, R) : joint ? jointHistogram(joint, R) : given ?? consensusHistogramOf(masks);
  const m = summarizePairs(pairs);
  return {
    name, layer: parsed.layer, kind: parsed.kind, shape, numel, changed, density, jaccard: J, pairs,
    ...m,
    consensusHistogram: hist,
    allRunsFraction: numel === 0 ? NaN : hist[R]! / numel,
    allRunsExpected: density.reduce((a, b) => a * b, 1),
    nonFinite: [...nonFinite],
  };
}

/** hist[k] = entries changed by exactly k runs, from entries per run mask. */
function jointHistogram(joint: Float64Array, R: number): number[] {
  const h = new Array<number>(R + 1).fill(0);
  for (let m = 0; m < joint.length; m++) h[popcount32(m)]! += joint[m]!;
  return h;
}

/** Means over pairs of pooled J and baselines (see LOCALITY_FORMULAS.mean). */
function summarizePairs(pairs: readonly PairSums[]): Pick<TensorLocality, 'meanJaccard' | 'meanBernoulli' | 'meanMagnitudeMatched' | 'ratioBernoulli' | 'ratioMagnitudeMatched'> {
  let sj = 0, sb = 0, sm = 0, n = 0, nm = 0;
  for (const p of pairs) {
    if (p.union === 0 || p.bernoulliUnion === 0) continue; // undefined pair: both masks empty
    sj += p.intersection / p.union;
    sb += p.bernoulliIntersection / p.bernoulliUnion;
    if (p.magnitudeIntersection !== null && p.magnitudeUnion !== null && p.magnitudeUnion > 0) {
      sm += p.magnitudeIntersection / p.magnitudeUnion;
      nm++;
    }
    n++;
  }
  const meanJaccard = n === 0 ? NaN : sj / n;
  const meanBernoulli = n === 0 ? NaN : sb / n;
  const meanMagnitudeMatched = nm === 0 || nm !== n ? NaN : sm / nm;
  return {
    meanJaccard, meanBernoulli, meanMagnitudeMatched,
    ratioBernoulli: meanJaccard / meanBernoulli,
    ratioMagnitudeMatched: meanJaccard / meanMagnitudeMatched,
  };
}

/** Pooled locality of a group of tensors (a layer, a kind, a layer × kind cell, all). */
export interface GroupLocality {
  group: string;
  layer: number | null;
  kind: ModuleKind | 'all';
  tensors: number;
  numel: number;
  /** Pooled density per run. */
  density: number[];
  /** Pooled R×R Jaccard. */
  jaccard: number[][];
  meanJaccard: number;
  meanBernoulli: number;
  meanMagnitudeMatched: number;
  ratioBernoulli: number;
  ratioMagnitudeMatched: number;
}

/** Pools tensors' pair sums (see the module comment). */
export function poolLocality(group: string, layer: number | null, kind: ModuleKind | 'all', ts: readonly TensorLocality[], R: number): GroupLocality {
  const pooled = new Map<string, PairSums>();
  const changed = new Array<number>(R).fill(0);
  let numel = 0;
  for (const t of ts) {
    numel += t.numel;
    for (let r = 0; r < R; r++) changed[r]! += t.changed[r]!;
    for (const p of t.pairs) {
      const key = `${p.r},${p.s}`;
      const acc = pooled.get(key) ?? { r: p.r, s: p.s, intersection: 0, union: 0, bernoulliIntersection: 0, bernoulliUnion: 0, magnitudeIntersection: 0, magnitudeUnion: 0 };
      acc.intersection += p.intersection;
      acc.union += p.union;
      acc.bernoulliIntersection += p.bernoulliIntersection;
      acc.bernoulliUnion += p.bernoulliUnion;
      acc.magnitudeIntersection = acc.magnitudeIntersection === null || p.magnitudeIntersection === null ? null : acc.magnitudeIntersection + p.magnitudeIntersection;
      acc.magnitudeUnion = acc.magnitudeUnion === null || p.magnitudeUnion === null ? null : acc.magnitudeUnion + p.magnitudeUnion;
      pooled.set(key, acc);
    }
  }
  const pairs = [...pooled.values()].sort((a, b) => a.r - b.r || a.s - b.s);
  const J = Array.from({ length: R }, (_, r) => Array.from({ length: R }, (_, s) => (r === s ? (changed[r]! > 0 ? 1 : NaN) : NaN)));
  for (const p of pairs) J[p.r]![p.s] = J[p.s]![p.r] = p.union === 0 ? NaN : p.intersection / p.union;
  return {
    group, layer, kind, tensors: ts.length, numel,
    density: changed.map((c) => (numel === 0 ? 0 : c / numel)),
    jaccard: J,
    ...summarizePairs(pairs),
  };
}

// ---------------------------------------------------------------------------------------
// Reading: each checkpoint once
// ---------------------------------------------------------------------------------------

/** What the single-read pass produced besides the masks. */
export interface MaskPass {
  /** The sparsity document of the same pass (engineer B's probe; free by-product). */
  sparsity: SparsityDoc;
  /** Tensors some tuned model lacks (or pairs differently): no masks, skipped. */
  incomplete: string[];
}

/**
 * Streams the update masks of every selected tensor against all tuned models through the
 * sparsity probe's single-read pass (`updateSparsity(..., { onMask })`: each checkpoint is
 * read once, the base once for all tuned models, optionally in worker threads). `onTensor`
 * gets a tensor's R masks (tuned order) as soon as the last one arrives; only one tensor's
 * masks are held at a time.
 */
export async function forEachTensorMasks(
  baseSpec: string, tunedSpecs: readonly string[],
  o: { probe?: ProbeOptions; threads?: number; filter?: (name: string) => boolean },
  onTensor: (name: string, masks: BitMask[]) => void,
): Promise<MaskPass> {
  const R = tunedSpecs.length;
  const incomplete: string[] = [];
  let cur: { name: string; masks: (BitMask | undefined)[]; n: number } | null = null;
  const flushPartial = (): void => {
    if (cur && cur.n < R) incomplete.push(cur.name);
    cur = null;
  };
  const sparsity = await updateSparsity(baseSpec, tunedSpecs, {
    probe: o.probe, threads: o.threads, filter: o.filter,
    onMask: (r, name, mask) => {
      if (!cur || cur.name !== name) { flushPartial(); cur = { name, masks: new Array(R), n: 0 }; }
      const c: { name: string; masks: (BitMask | undefined)[]; n: number } = cur;
      if (!c.masks[r]) c.n++;
      c.masks[r] = mask;
      if (c.n === R) { cur = null; onTensor(name, c.masks as BitMask[]); }
    },
  });
  flushPartial();
  return { sparsity, incomplete };
}

/**
 * The update masks of one tensor against R tuned models in-process, reading the base tensor
 * once (returned whole, for magnitude bins) and each tuned tensor once, in chunks.
 */
export function readUpdateMasksOnce(
  base: TensorSource, tuned: readonly TensorSource[], name: string,
  probe: ProbeOptions = DEFAULT_PROBE, chunkElems = 1 << 20,
): { baseBytes: Uint8Array; masks: BitMask[]; nonFinite: number[] } {
  const bi = base.info(name);
  for (const t of tuned) {
    if (!t.has(name)) throw new FormatError(t.root, 'E_MISSING_TENSOR', `no tensor named ${JSON.stringify(name)} (present in the base ${base.spec})`);
    const ti = t.info(name);
    if (ti.shape.length !== bi.shape.length || ti.shape.some((d, i) => d !== bi.shape[i])) {
      throw new FormatError(ti.file, 'E_SHAPE_MISMATCH', `tensor ${name} has shape [${ti.shape.join(', ')}], the base has [${bi.shape.join(', ')}]`);
    }
  }
  const baseBytes = base.readBytes(name);
  const bs = bi.byteLength / Math.max(1, bi.numel);
  const masks: BitMask[] = [];
  const nonFinite: number[] = [];
  for (const t of tuned) {
    const ti = t.info(name);
    const ts = ti.byteLength / Math.max(1, ti.numel);
    const mask = new BitMask(bi.shape);
    const stats: MaskStats = { nonFinite: 0 };
    const buf = new Uint8Array(Math.min(bi.numel, chunkElems) * ts);
    for (let start = 0; start < bi.numel; start += chunkElems) {
      const n = Math.min(chunkElems, bi.numel - start);
      const b = t.readBytes(name, start * ts, n * ts, buf.subarray(0, n * ts));
      markChanged(mask, start, baseBytes.subarray(start * bs, (start + n) * bs), bi.dtype, b, ti.dtype, probe, stats);
    }
    masks.push(mask);
    nonFinite.push(stats.nonFinite);
  }
  return { baseBytes, masks, nonFinite };
}

/**
 * The tensors a probe covers in checkpoint `spec`, their decoder layers (ascending) and the
 * middle one (the default Table-2 / profile layer). A UsageError when nothing is selected.
 */
export function tensorSelection(spec: string, opts: { all?: boolean; match?: RegExp }): { names: string[]; layers: number[]; middle: number | null } {
  const base = openCheckpoint(spec);
  let names: string[];
  try { names = selectTensors(base, opts); } finally { base.close(); }
  if (names.length === 0) throw new UsageError(`no tensors selected in ${spec}${opts.match ? ` matching /${opts.match.source}/` : ''}`);
  const layers = [...new Set(names.map((n) => parseTensorName(n).layer).filter((l): l is number => l !== null))].sort((a, b) => a - b);
  return { names, layers, middle: layers.length > 0 ? layers[Math.floor((layers.length - 1) / 2)]! : null };
}

/** Which tensors a probe covers: 2-D linear weights by default, or every tensor. */
export function selectTensors(base: TensorSource, opts: { all?: boolean; match?: RegExp }): string[] {
  return base.names.filter((n) => {
    if (opts.match && !opts.match.test(n)) return false;
    if (opts.all) return true;
    return isLinearWeight(parseTensorName(n), base.info(n).shape);
  });
}

// ---------------------------------------------------------------------------------------
// The whole probe
// ---------------------------------------------------------------------------------------

export interface LocalityOptions {
  probe: ProbeOptions;
  /** Equal-count |W0| bins for the magnitude-matched baseline (SPEC §4: 20). */
  numBins: number;
  /** Every tensor instead of 2-D linear weights only. */
  allTensors: boolean;
  /** Only tensors whose name matches. */
  match?: RegExp;
  /** Tensors whose consensus image to keep (pooled to consensusMaxSize). */
  consensusFor?: (name: string) => boolean;
  /** Longest side of kept consensus images, in entries (0 = full resolution). */
  consensusMaxSize: number;
  /** Worker threads of the mask pass (default: all cores). */
  threads?: number;
  /** runLocalityPass: let the mask pass cover every tensor, so its sparsity document is the
   * full one `rlvr-lens sparsity` writes (locality still analyses only the selected tensors). */
  fullSparsity?: boolean;
  /** Called after each tensor (progress). */
  onTensor?: (name: string, index: number, total: number) => void;
  /** runLocalityPass: also pool each run's mask of every analysed 2-D tensor to at most
   * this many cells per side and hand them to `onMaskImages` (the report's heatmaps, from the same read). */
  maskImageSide?: number;
  onMaskImages?: (name: string, shape: readonly number[], images: PooledMask[]) => void;
}

export const DEFAULT_LOCALITY: Readonly<LocalityOptions> = {
  probe: DEFAULT_PROBE, numBins: 20, allTensors: false, consensusMaxSize: 512,
};

export interface ConsensusImage {
  name: string;
  runs: number;
  grid: Grid;
}

export interface LocalityResult {
  params: {
    probe: ProbeOptions;
    numBins: number;
    tensors: 'linear-2d' | 'all';
    match: string | null;
    formulas: typeof LOCALITY_FORMULAS;
  };
  base: string;
  runs: string[];
  tensors: TensorLocality[];
  /** Pooled per layer × kind, per kind (all layers), per layer (all kinds), and all. */
  byLayerKind: GroupLocality[];
  byKind: GroupLocality[];
  byLayer: GroupLocality[];
  all: GroupLocality;
  /** Tensors skipped because some run lacks them (see sparsity.pairing). */
  incomplete: string[];
  changeRate: ChangeRateResult;
  /** Kept consensus images (not part of the JSON document; rendered as figures). */
  consensus: ConsensusImage[];
  /** The sparsity document of the same single-read pass (runLocalityPass only; written as sparsity.json). */
  sparsity: SparsityDoc | null;
}

/** Per-tensor work shared by both entry points: summaries, change rates, consensus images. */
class LocalityAccumulator {
  readonly tensors: TensorLocality[] = [];
  readonly consensus: ConsensusImage[] = [];
  private readonly cr: ChangeRateAccumulator;
  constructor(private readonly R: number, private readonly o: LocalityOptions) {
    this.cr = newChangeRateAccumulator(R);
  }

  /** The request for a tensor: its bins, its consensus image and run images if asked for. */
  request(name: string): ProfileRequest {
    return { numBins: this.o.numBins, image: this.o.consensusFor?.(name) ? this.o.consensusMaxSize : null, runImages: this.o.maskImageSide ?? null };
  }

  add(name: string, baseBytes: Uint8Array, dtype: DType, masks: BitMask[], nonFinite: number[]): void {
    this.addProfile(name, summarizeTensor(name, dtype, baseBytes, masks, nonFinite, this.request(name)));
  }

  addProfile(name: string, p: TensorProfile): void {
    this.tensors.push(p.tensor);
    addChangeRateSlots(this.cr, p.tensor.kind, p.changeRate);
    if (p.image) this.consensus.push({ name, runs: this.R, grid: p.image });
  }

  finish(baseSpec: string, tunedSpecs: readonly string[], incomplete: string[], sparsity: SparsityDoc | null): LocalityResult {
    const o = this.o;
    return {
      params: { probe: { ...o.probe }, numBins: o.numBins, tensors: o.allTensors ? 'all' : 'linear-2d', match: o.match ? o.match.source : null, formulas: LOCALITY_FORMULAS },
      base: baseSpec,
      runs: [...tunedSpecs],
      tensors: this.tensors,
      incomplete,
      ...groupLocality(this.tensors, this.R),
      changeRate: finishChangeRate(this.cr, tunedSpecs),
      consensus: this.consensus,
      sparsity,
    };
  }
}

/**
 * The locality probe in-process (single thread) over opened checkpoints: each tensor's base
 * bytes and each tuned model's bytes are read once (`readUpdateMasksOnce`). A tensor missing
 * from a tuned model, or of another shape, is an error. No sparsity document is produced.
 */
export function runLocality(base: TensorSource, tuned: readonly TensorSource[], options: Partial<LocalityOptions> = {}): LocalityResult {
  const o: LocalityOptions = { ...DEFAULT_LOCALITY, ...options };
  if (tuned.length < 2) throw new UsageError('locality needs at least two tuned runs from the same base');
  const names = selectTensors(base, { all: o.allTensors, match: o.match });
  const acc = new LocalityAccumulator(tuned.length, o);
  names.forEach((name, idx) => {
    const { baseBytes, masks, nonFinite } = readUpdateMasksOnce(base, tuned, name, o.probe);
    acc.add(name, baseBytes, base.info(name).dtype, masks, nonFinite);
    o.onTensor?.(name, idx, names.length);
  });
  return acc.finish(base.spec, tuned.map((t) => t.spec), [], null);
}

/**
 * The locality probe over checkpoint specs through the sparsity probe's single-read pass
 * (worker threads; also yields the sparsity document). Each checkpoint is read once: every
 * analysed tensor is one task that reads the base and the R tuned tensors, builds the masks
 * and profiles them in the same thread (./locality-engine.ts; the fused WebAssembly kernel
 * for bf16), so only per-tensor summaries reach this thread. Tensors some run lacks are
 * skipped and listed in `incomplete`.
 */
export async function runLocalityPass(baseSpec: string, tunedSpecs: readonly string[], options: Partial<LocalityOptions> = {}): Promise<LocalityResult> {
  const o: LocalityOptions = { ...DEFAULT_LOCALITY, ...options };
  if (tunedSpecs.length < 2) throw new UsageError('locality needs at least two tuned runs from the same base');
  const base = openCheckpoint(baseSpec);
  try {
    const names = new Set(selectTensors(base, { all: o.allTensors, match: o.match }));
    const acc = new LocalityAccumulator(tunedSpecs.length, o);
    let done = 0;
    const filter = o.fullSparsity ? undefined : (n: string): boolean => names.has(n);
    const profiled = new Set<string>();
    const sparsity = await updateSparsity(baseSpec, tunedSpecs, {
      probe: o.probe, threads: o.threads, filter,
      profile: {
        request: (name) => (names.has(name) ? acc.request(name) : null),
        onProfile: (name, p) => {
          profiled.add(name);
          acc.addProfile(name, p);
          if (p.runImages) o.onMaskImages?.(name, p.tensor.shape, p.runImages);
          o.onTensor?.(name, done++, names.size);
        },
      },
    });
    // Tensors some run lacks (paired by only some tuned models) are listed, not analysed.
    const incomplete = sparsity.tensors.map((t) => t.name).filter((n) => names.has(n) && !profiled.has(n));
    return acc.finish(baseSpec, tunedSpecs, incomplete, sparsity);
  } finally {
    base.close();
  }
}

/** The pooled groups of a list of tensor summaries. */
export function groupLocality(tensors: readonly TensorLocality[], R: number): Pick<LocalityResult, 'byLayerKind' | 'byKind' | 'byLayer' | 'all'> {
  const by = <K extends string>(key: (t: TensorLocality) => K | null): Map<K, TensorLocality[]> => {
    const m = new Map<K, TensorLocality[]>();
    for (const t of tensors) {
      const k = key(t);
      if (k === null) continue;
      if (!m.has(k)) m.set(k, []);
      m.get(k)!.push(t);
    }
    return m;
  };
  const kindOrder = (k: string): number => KIND_ORDER.indexOf(k as ModuleKind);
  const byLayerKind = [...by((t) => (t.layer === null ? null : `${t.layer}\u0000${t.kind}`))]
    .map(([k, ts]) => { const [l, kind] = k.split('\u0000') as [string, ModuleKind]; return poolLocality(`layer ${l} ${kind}`, Number(l), kind, ts, R); })
    .sort((a, b) => a.layer! - b.layer! || kindOrder(a.kind) - kindOrder(b.kind));
  const byKind = [...by((t) => t.kind)].map(([k, ts]) => poolLocality(k, null, k, ts, R)).sort((a, b) => kindOrder(a.kind) - kindOrder(b.kind));
  const byLayer = [...by((t) => (t.layer === null ? null : String(t.layer)))]
    .map(([l, ts]) => poolLocality(`layer ${l}`, Number(l), 'all', ts, R)).sort((a, b) => a.layer! - b.layer!);
  return { byLayerKind, byKind, byLayer, all: poolLocality('all', null, 'all', tensors, R) };
}

/** Table order of module kinds (paper Table 2: Q, K, V, O, then MLP). */
export const KIND_ORDER: readonly ModuleKind[] = ['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'expert', 'router', 'embed', 'lm_head', 'norm', 'bias', 'other'];

/** Paper-style label of a module kind (Table 2 rows). */
export function kindLabel(k: ModuleKind | 'all'): string {
  const m: Partial<Record<ModuleKind | 'all', string>> = { q: 'Q', k: 'K', v: 'V', o: 'O', gate: 'MLP-gate', up: 'MLP-up', down: 'MLP-down', all: 'all' };
  return m[k] ?? k;
}

// ---------------------------------------------------------------------------------------
// Tables (Table-2 style)
// ---------------------------------------------------------------------------------------

const GROUP_COLUMNS = ['jaccard', 'bernoulli_baseline', 'ratio_vs_bernoulli', 'magnitude_matched_baseline', 'ratio_vs_magnitude_matched', 'mean_density', 'entries'];

function groupCells(g: GroupLocality | TensorLocality): Cell[] {
  const meanDensity = g.density.reduce((a, b) => a + b, 0) / Math.max(1, g.density.length);
  return [g.meanJaccard, g.meanBernoulli, g.ratioBernoulli, g.meanMagnitudeMatched, g.ratioMagnitudeMatched, meanDensity, g.numel];
}

/** The layers present, and the default Table-2 layer (the middle one). */
export function localityLayers(r: Pick<LocalityResult, 'byLayer'>): { layers: number[]; middle: number | null } {
  const layers = r.byLayer.map((g) => g.layer!).filter((l) => l !== null);
  return { layers, middle: layers.length === 0 ? null : layers[Math.floor((layers.length - 1) / 2)]! };
}

/**
 * Tables: `layer` (Table 2: one row per module kind of the chosen layer), `kinds` (all
 * layers pooled per kind), `layers` (per layer, all kinds pooled), `layer_kind` (every
 * cell), `tensors` (every tensor), `changerate` (per binade, all linear weights).
 */
export function localityTables(r: LocalityResult, layer: number | null): Record<string, Table> {
  const cols = (first: string[]): string[] => [...first, ...GROUP_COLUMNS];
  const tables: Record<string, Table> = {};
  if (layer !== null) {
    tables.layer = {
      columns: cols(['module']),
      rows: r.byLayerKind.filter((g) => g.layer === layer).map((g) => [kindLabel(g.kind), ...groupCells(g)]),
    };
  }
  tables.kinds = { columns: cols(['module']), rows: [...r.byKind.map((g) => [kindLabel(g.kind), ...groupCells(g)]), ['all', ...groupCells(r.all)]] };
  tables.layers = { columns: cols(['layer']), rows: r.byLayer.map((g) => [g.layer, ...groupCells(g)]) };
  tables.layer_kind = { columns: cols(['layer', 'module']), rows: r.byLayerKind.map((g) => [g.layer, kindLabel(g.kind), ...groupCells(g)]) };
  tables.tensors = {
    columns: ['tensor', ...GROUP_COLUMNS, 'all_runs_fraction', 'all_runs_expected_independent', 'non_finite'],
    rows: r.tensors.map((t) => [t.name, ...groupCells(t), t.allRunsFraction, t.allRunsExpected, t.nonFinite.reduce((a, b) => a + b, 0)]),
  };
  const all = r.changeRate.groups.find((g) => g.group === 'all');
  if (all) {
    tables.changerate = {
      columns: ['binade', 'entries', ...r.runs.map((_, k) => `rate_run${k + 1}`)],
      rows: all.rows.map((row) => [row.label, row.entries, ...row.rate]),
    };
  }
  return tables;
}

/** The JSON document of a locality result (consensus images and the sparsity document are written separately). */
export function localityDocument(r: LocalityResult, layer: number | null): ReturnType<typeof envelope> {
  const { consensus, sparsity, ...body } = r;
  return envelope('locality', {
    ...body,
    tableLayer: layer,
    consensusImages: consensus.map((c) => ({ name: c.name, pool: c.grid.pool, size: [c.grid.rows, c.grid.cols] })),
    sparsityDocument: sparsity ? 'sparsity.json' : null,
  });
}
