/**
 * The locality probe's per-tensor task inside the single-read pass: a whole tensor against R
 * tuned models, read once, masks built where they are read, and only the tensor's profile
 * (./locality-tensor.ts) plus its sparsity counts sent back. All-bf16 tensors under the
 * bitwise η rule go through the fused WebAssembly kernel (./profile-kernel.ts), which
 * compares and counts in one pass; anything else (other dtypes, the abs rule, R > 8, no
 * WebAssembly SIMD) takes the generic compare followed by the JS accounting — same numbers.
 */
import { BitMask } from './mask.js';
import { type BinLayout, type MagnitudeBinCounts, binLayout, mergeNanPatterns } from './locality.js';
import { summarizeTensor } from './locality-tensor.js';
import { Bf16ProfileKernel, type PatternCounts, SNAPSHOT_BYTES, profileKernelAvailable } from './profile-kernel.js';
import { type EngineContext, type RangeResult, type RangeTask, compareRange } from './sparsity-engine.js';
import { countNonFinite, countNonFinitePairsBf16, isBitwiseFastPath } from './update.js';

/**
 * Bytes of tuned chunk regions the fused kernel fills per step (all R runs together). Files
 * are read straight into these regions; a copy from the page cache runs ~25% faster when its
 * destination stays in L2 (measured: 7.5 GB/s into a 768 KB ring, 6.0 GB/s into 1.5 MB), so
 * R regions share ~768 KB rather than each taking the sparsity pass's chunk.
 */
const PROFILE_REGION_BYTES = 768 * 1024;

/** Entries per fused-kernel chunk for R runs: a power of two ≤ chunkElems whose R regions fit PROFILE_REGION_BYTES. */
export function profileChunkElems(chunkElems: number, R: number): number {
  let c = 1 << 12;
  while (c * 2 <= chunkElems && c * 2 * 2 * R <= PROFILE_REGION_BYTES) c *= 2;
  return Math.min(c, Math.max(32, chunkElems));
}

/** Per-thread fused kernels, one per run count (they hold a few MB each). */
const kernels = new WeakMap<EngineContext, Map<number, Bf16ProfileKernel>>();
function kernelFor(ctx: EngineContext, R: number): Bf16ProfileKernel {
  let m = kernels.get(ctx);
  if (!m) { m = new Map(); kernels.set(ctx, m); }
  let k = m.get(R);
  if (!k) { k = new Bf16ProfileKernel(R, profileChunkElems(ctx.cfg.chunkElems, R)); m.set(R, k); }
  return k;
}

/** Runs one task of the pass: a range compare, or a whole-tensor profile when `task.profile` is set. */
export function runRangeTask(ctx: EngineContext, task: RangeTask): RangeResult {
  return task.profile ? profileTensorTask(ctx, task) : compareRange(ctx, task);
}

/** Whether a whole-tensor task can use the fused kernel (exported for tests). */
export function fusedEligible(ctx: Pick<EngineContext, 'base' | 'tuned' | 'cfg'>, task: Pick<RangeTask, 'name' | 'tuned'>): boolean {
  const bi = ctx.base.info(task.name);
  if (bi.dtype !== 'BF16' || ctx.cfg.compareProbes) return false;
  if (!task.tuned.every((t) => ctx.tuned[t]!.info(task.name).dtype === 'BF16')) return false;
  // the base and the R masks must fit the kernel's WebAssembly memory (4 GiB at most, with
  // room for its fixed regions): beyond that the generic path holds them in JS memory
  if (bi.numel * (2 + task.tuned.length / 8) > FUSED_MAX_BYTES) return false;
  return isBitwiseFastPath('BF16', 'BF16', ctx.cfg.probe) && profileKernelAvailable(task.tuned.length);
}

/** Largest base + masks (bytes) a fused-kernel task takes; ~1.6 G entries with 8 runs. */
const FUSED_MAX_BYTES = 3.5 * 2 ** 30;

function profileTensorTask(ctx: EngineContext, task: RangeTask): RangeResult {
  const req = task.profile!;
  const bi = ctx.base.info(task.name);
  if (task.start !== 0 || task.end !== bi.numel) throw new RangeError(`profile task for ${task.name} must cover the whole tensor`);
  const R = task.tuned.length;
  let res: RangeResult;
  let baseBytes: Uint8Array;
  let counts: PatternCounts | undefined;
  let bins: MagnitudeBinCounts | undefined;
  let masks: BitMask[];
  if (fusedEligible(ctx, task) && bi.numel > 0) {
    const n = bi.numel;
    const k = kernelFor(ctx, R);
    const chunk = k.maxElems;
    // 1. The whole base first. Its pattern histogram (exact for small tensors, from a 1/8
    //    sample of blocks for large ones) says which patterns may straddle a bin boundary, so
    //    the pass can snapshot just those patterns' counts as it goes.
    baseBytes = ctx.base.readBytes(task.name, 0, 2 * n, k.baseWhole(n));
    ctx.onBytes?.(2 * n);
    // the kernel writes every mask word in place (its memory does not grow again in this task)
    masks = Array.from({ length: R }, (_, r) => new BitMask(bi.shape, k.maskWords(r, n)));
    let exactHist: Uint32Array | undefined;
    let spans: [number, number][];
    if (n <= EXACT_HISTOGRAM_MAX) {
      exactHist = k.baseHistogram(n);
      const baseTotal = exactHist.slice();
      mergeNanPatterns(baseTotal, []);
      spans = binLayout(baseTotal, n, req.numBins).strad.map((x): [number, number] => [x.m, x.m]);
    } else {
      const smp = k.baseHistogramSampled(n, SAMPLE_BLOCK, SAMPLE_EVERY);
      mergeNanPatterns(smp.hist, []);
      spans = straddlerSpans(smp.hist, smp.sampled, n, req.numBins);
    }
    const snap = new Snapshots(spans, R, n, k);
    res = {
      name: task.name, start: 0, end: n, nanBase: 0, infBase: 0,
      tuned: task.tuned.map((t) => ({
        tuned: t, changed: 0, nonFinite: 0, nanTuned: 0, infTuned: 0, bf16VisibleChanged: 0,
        absChangedBf16Unchanged: 0, bf16ChangedAbsUnchanged: 0, words: null,
      })),
    };
    // 2. The pass: tuned chunks read into the kernel, compared and counted against the base.
    const step = Math.min(snap.sub, chunk);
    for (let c = 0; c < n; c += chunk) {
      const m = Math.min(chunk, n - c);
      for (let r = 0; r < R; r++) {
        ctx.tuned[task.tuned[r]!]!.readBytes(task.name, c * 2, m * 2, k.tunedRegion(r, m * 2));
        ctx.onBytes?.(m * 2);
      }
      let flagged = false;
      for (let o = 0; o < m; o += step) {
        const cnt = Math.min(step, m - o);
        k.run(n, c + o, o, cnt);
        flagged ||= k.nonFiniteSeen();
        if ((c + o + cnt) % snap.sub === 0 || c + o + cnt === n) snap.take();
      }
      if (flagged) {
        // rare (an all-ones exponent somewhere): exact counts as compareRange takes them
        const a = baseBytes.subarray(2 * c, 2 * (c + m));
        let baseFlag = false;
        for (let r = 0; r < R; r++) {
          const b = k.tunedRegion(r, m * 2);
          const nf = countNonFinitePairsBf16(a, b, m);
          if (nf === 0) continue;
          const t = res.tuned[r]!;
          t.nonFinite += nf;
          const x = countNonFinite(b, 'BF16');
          t.nanTuned += x.nan;
          t.infTuned += x.inf;
          baseFlag = true;
        }
        if (baseFlag) {
          const x = countNonFinite(a, 'BF16');
          res.nanBase += x.nan;
          res.infBase += x.inf;
        }
      }
    }
    counts = k.take(exactHist);
    res.tuned.forEach((t, r) => {
      let c = 0;
      for (let m = 0; m < counts!.perRunMask.length; m++) if ((m >>> r) & 1) c += counts!.perRunMask[m]!;
      // the bitwise compare is the bf16-visible rule itself
      t.changed = c;
      t.bf16VisibleChanged = c;
    });
    // 3. Bins from whole patterns plus the straddlers' snapshotted prefixes; when a straddler
    //    was not snapshotted (a sample far off, or NaNs straddling), summarizeTensor walks.
    mergeNanPatterns(counts.total, counts.changed);
    const lay = binLayout(counts.total, n, req.numBins);
    const keys = lay.strad.map((x) => snap.keyIndex(x.m));
    if (!lay.nanStraddles && keys.every((j) => j >= 0)) bins = binsFromSnapshots(lay, keys, snap, counts, k, n, req.numBins);
    else snapshotMisses++;
  } else {
    masks = task.tuned.map(() => new BitMask(bi.shape));
    res = compareRange(ctx, { ...task, wantMask: true });
    res.tuned.forEach((t, r) => { masks[r]!.words.set(t.words!); t.words = null; });
    baseBytes = ctx.base.readBytes(task.name);
  }
  res.profile = summarizeTensor(task.name, bi.dtype, baseBytes, masks, res.tuned.map((t) => t.nonFinite), req, counts, bins);
  return res;
}

/** Tensors up to this many entries get the exact base histogram before the pass (~1 ms there; a
 *  sample of a few hundred rows can be far off when rows differ in scale, as k/v projections' do). */
const EXACT_HISTOGRAM_MAX = 1 << 20;
/** Larger ones: the histogram of blocks of SAMPLE_BLOCK entries, one in every SAMPLE_EVERY. */
const SAMPLE_BLOCK = 512, SAMPLE_EVERY = 8;

/** Tensors whose bins fell back to the walk because a straddler had no snapshot (diagnostics, per thread). */
let snapshotMisses = 0;
export function profileSnapshotMisses(): number { return snapshotMisses; }

/**
 * Pattern ranges that may hold a bin boundary, from a sampled (NaN-merged) pattern histogram:
 * for each boundary rank r = b·n/numBins, the patterns whose estimated rank range meets
 * r ± d, d = z·n·√(q(1−q)/sampled) + 2·n/sampled (z standard errors of the sampled quantile q
 * = r/n, plus two sampled entries' worth). Sorted, merged, inclusive [lo, hi] pairs.
 */
export function straddlerSpans(sampled: Uint32Array, count: number, n: number, numBins: number, z = 6): [number, number][] {
  const P = sampled.length;
  if (count <= 0) return [[0, P - 1]];
  const scale = n / count;
  const start = new Float64Array(P + 1); // estimated first rank of each pattern
  for (let p = 0; p < P; p++) start[p + 1] = start[p]! + sampled[p]! * scale;
  // largest p with start[p] ≤ x (0 when none)
  const lastStartingBy = (x: number): number => {
    let lo = 0, hi = P - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >>> 1; if (start[mid]! <= x) lo = mid; else hi = mid - 1; }
    return lo;
  };
  // smallest p with start[p + 1] ≥ x (P − 1 when none)
  const firstEndingBy = (x: number): number => {
    let lo = 0, hi = P - 1;
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (start[mid + 1]! >= x) hi = mid; else lo = mid + 1; }
    return lo;
  };
  const spans: [number, number][] = [];
  for (let b = 1; b < numBins; b++) {
    const r = (b * n) / numBins, q = r / n;
    const d = z * n * Math.sqrt((q * (1 - q)) / count) + 2 * scale;
    const lo = lastStartingBy(r - d), hi = Math.max(lo, firstEndingBy(r + d));
    const last = spans[spans.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else spans.push([lo, hi]);
  }
  return spans;
}

/**
 * Cumulative run-mask counts of the candidate straddling patterns (contiguous pattern spans),
 * taken every `sub` entries of the pass (sub a power of two ≥ 2^15, at most 8192 snapshots
 * and SNAPSHOT_BYTES per tensor): snapshot c holds, for key j (the j-th pattern of the
 * spans), how many of its entries in [0, end of sub-chunk c) fell in each run mask.
 */
class Snapshots {
  readonly sub: number;
  readonly count: number;
  readonly cells: Uint32Array;
  /** Patterns snapshotted (keys, in span order). */
  readonly keys: number;
  private taken = 0;
  /** The kernel's live rows of each span, when the kernel does not copy them itself. */
  private readonly rows: Uint32Array[] | null;
  private readonly at: number[] = [];
  private readonly kernel: Bf16ProfileKernel;
  constructor(private readonly spans: readonly [number, number][], readonly runs: number, n: number, k: Bf16ProfileKernel) {
    this.keys = spans.reduce((a, [lo, hi]) => a + hi - lo + 1, 0);
    const rowBytes = this.keys * (1 << runs) * 4;
    let sub = 1 << 15;
    while (Math.ceil(n / sub) > 8192 || Math.ceil(n / sub) * rowBytes > SNAPSHOT_BYTES) sub *= 2;
    this.sub = sub;
    this.count = Math.ceil(n / sub);
    let at = 0;
    for (const [lo, hi] of spans) { this.at.push(at); at += hi - lo + 1; }
    // the kernel copies every span of a snapshot in one call, into its own memory
    const cells = this.keys === 0 ? new Uint32Array(0) : k.snapshotSpans(spans, this.count);
    this.cells = cells ?? new Uint32Array(this.count * this.keys * (1 << runs));
    this.rows = cells ? null : spans.map(([lo, hi]) => k.rowsView(lo, hi));
    this.kernel = k;
  }
  /** Key index of pattern m, or −1 when it was not snapshotted. */
  keyIndex(m: number): number {
    for (let i = 0; i < this.spans.length; i++) {
      const [lo, hi] = this.spans[i]!;
      if (m >= lo && m <= hi) return this.at[i]! + m - lo;
    }
    return -1;
  }
  take(): void {
    if (this.keys > 0) {
      if (this.rows) {
        const M = 1 << this.runs, base = this.taken * this.keys;
        for (let i = 0; i < this.rows.length; i++) this.cells.set(this.rows[i]!, (base + this.at[i]!) * M);
      } else this.kernel.snapshot(this.taken, this.keys);
    }
    this.taken++;
  }
  /** Entries of key j before the end of sub-chunk c. */
  occurrences(c: number, j: number): number {
    const M = 1 << this.runs, at = (c * this.keys + j) * M;
    let t = 0;
    for (let m = 0; m < M; m++) t += this.cells[at + m]!;
    return t;
  }
}

/**
 * Per-bin sizes and changed counts (what magnitudeProfileFromPatterns computes, exactly) from
 * the pattern counts of the pass, the straddler layout and the snapshots: a straddler's
 * entries before each of its cuts = the snapshot before the sub-chunk holding the cut plus a
 * walk of that one sub-chunk, instead of a scan of the whole tensor.
 */
function binsFromSnapshots(
  lay: BinLayout, keys: readonly number[], snap: Snapshots, counts: PatternCounts, k: Bf16ProfileKernel, n: number, numBins: number,
): MagnitudeBinCounts {
  const R = k.runs, M = 1 << R, S = snap.keys;
  const binSize = new Float64Array(numBins);
  const perBin = Array.from({ length: R }, () => new Float64Array(numBins));
  for (let q = 0; q < lay.whole.length; q += 2) {
    const m = lay.whole[q]!, b = lay.whole[q + 1]!;
    binSize[b]! += counts.total[m]!;
    for (let r = 0; r < R; r++) perBin[r]![b]! += counts.changed[r]![m]!;
  }
  const cum = new Float64Array(M), prev = new Float64Array(M);
  for (let j = 0; j < lay.strad.length; j++) {
    const x = lay.strad[j]!, key = keys[j]!;
    prev.fill(0);
    let prevO = 0, bin = x.b0;
    for (const o of x.cuts) {
      // first sub-chunk whose end has more than o entries of the pattern
      let lo = 0, hi = snap.count - 1;
      while (lo < hi) { const mid = (lo + hi) >>> 1; if (snap.occurrences(mid, key) > o) hi = mid; else lo = mid + 1; }
      const c = lo;
      let seen = 0;
      if (c > 0) {
        const at = ((c - 1) * S + key) * M;
        for (let m = 0; m < M; m++) { cum[m] = snap.cells[at + m]!; seen += cum[m]!; }
      } else cum.fill(0);
      // The cut lies in sub-chunk c: the kernel steps through the pattern's occurrences there.
      const from = c * snap.sub, count = Math.min(n, from + snap.sub) - from;
      if (seen < o) {
        const need = o - seen;
        if (k.walkPattern(from, count, x.m, need, cum) < need) throw new Error(`locality: snapshot walk ran out of occurrences of pattern ${x.m}`);
        seen = o;
      }
      binSize[bin]! += o - prevO;
      for (let m = 1; m < M; m++) {
        const d = cum[m]! - prev[m]!;
        if (d !== 0) for (let r = 0; r < R; r++) if ((m >>> r) & 1) perBin[r]![bin]! += d;
      }
      prev.set(cum);
      prevO = o;
      bin++;
    }
    binSize[x.b1]! += counts.total[x.m]! - prevO;
    for (let r = 0; r < R; r++) {
      let before = 0;
      for (let m = 0; m < M; m++) if ((m >>> r) & 1) before += prev[m]!;
      perBin[r]![x.b1]! += counts.changed[r]![x.m]! - before;
    }
  }
  return { binSize, perBin, patternTotal: counts.total, patternChanged: counts.changed };
}
