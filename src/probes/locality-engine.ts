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
import { Bf16ProfileKernel, type PatternCounts, profileKernelAvailable } from './profile-kernel.js';
import { type EngineContext, type RangeResult, type RangeTask, compareRange } from './sparsity-engine.js';
import { countNonFinite, countNonFinitePairsBf16, isBitwiseFastPath } from './update.js';

/** Per-thread fused kernels, one per run count (they hold a few MB each). */
const kernels = new WeakMap<EngineContext, Map<number, Bf16ProfileKernel>>();
function kernelFor(ctx: EngineContext, R: number): Bf16ProfileKernel {
  let m = kernels.get(ctx);
  if (!m) { m = new Map(); kernels.set(ctx, m); }
  let k = m.get(R);
  if (!k) { k = new Bf16ProfileKernel(R, ctx.cfg.chunkElems); m.set(R, k); }
  return k;
}

/** Per-thread words for R masks of a tensor, reused (grown) across tasks; the masks never leave the task. */
const maskWords = new WeakMap<EngineContext, Uint32Array>();

function maskBuffers(ctx: EngineContext, shape: readonly number[], R: number): BitMask[] {
  const nw = Math.ceil(shape.reduce((a, b) => a * b, 1) / 32);
  let w = maskWords.get(ctx);
  if (!w || w.length < R * nw) { w = new Uint32Array(Math.max(R * nw, Math.ceil((w?.length ?? 0) * 1.5))); maskWords.set(ctx, w); }
  return Array.from({ length: R }, (_, r) => new BitMask(shape, w!.subarray(r * nw, (r + 1) * nw)));
}

/** Runs one task of the pass: a range compare, or a whole-tensor profile when `task.profile` is set. */
export function runRangeTask(ctx: EngineContext, task: RangeTask): RangeResult {
  return task.profile ? profileTensorTask(ctx, task) : compareRange(ctx, task);
}

/** Whether a whole-tensor task can use the fused kernel. */
function fusedEligible(ctx: EngineContext, task: RangeTask): boolean {
  const bi = ctx.base.info(task.name);
  if (bi.dtype !== 'BF16' || ctx.cfg.compareProbes) return false;
  if (!task.tuned.every((t) => ctx.tuned[t]!.info(task.name).dtype === 'BF16')) return false;
  return isBitwiseFastPath('BF16', 'BF16', ctx.cfg.probe) && profileKernelAvailable(task.tuned.length);
}

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
    // every word is overwritten by the pass: reused buffers, no per-tensor allocation
    masks = maskBuffers(ctx, bi.shape, R);
    const k = kernelFor(ctx, R);
    const chunk = k.maxElems;
    // 1. The whole base first: its pattern histogram says which patterns straddle a bin
    //    boundary, so the pass can snapshot just those patterns' counts as it goes.
    baseBytes = ctx.base.readBytes(task.name, 0, 2 * n, k.baseWhole(n));
    ctx.onBytes?.(2 * n);
    const baseHist = k.baseHistogram(n);
    const baseTotal = baseHist.slice();
    mergeNanPatterns(baseTotal, []);
    const lay = binLayout(baseTotal, n, req.numBins);
    const snap = lay.nanStraddles ? null : new Snapshots(lay.strad.map((x) => x.m), R, n, k);
    res = {
      name: task.name, start: 0, end: n, nanBase: 0, infBase: 0,
      tuned: task.tuned.map((t) => ({
        tuned: t, changed: 0, nonFinite: 0, nanTuned: 0, infTuned: 0, bf16VisibleChanged: 0,
        absChangedBf16Unchanged: 0, bf16ChangedAbsUnchanged: 0, words: null,
      })),
    };
    // 2. The pass: tuned chunks read into the kernel, compared and counted against the base.
    const step = snap ? Math.min(snap.sub, chunk) : chunk;
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
        if (snap && ((c + o + cnt) % snap.sub === 0 || c + o + cnt === n)) snap.take();
      }
      for (let r = 0; r < R; r++) masks[r]!.words.set(k.words(r, m), c >>> 5);
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
    counts = k.take(baseHist);
    res.tuned.forEach((t, r) => {
      let c = 0;
      for (let m = 0; m < counts!.perRunMask.length; m++) if ((m >>> r) & 1) c += counts!.perRunMask[m]!;
      // the bitwise compare is the bf16-visible rule itself
      t.changed = c;
      t.bf16VisibleChanged = c;
    });
    // 3. Bins from whole patterns plus the straddlers' snapshotted prefixes.
    if (snap) {
      mergeNanPatterns(counts.total, counts.changed);
      bins = binsFromSnapshots(lay, snap, counts, masks, k.baseEntries(n), req.numBins);
    }
  } else {
    masks = task.tuned.map(() => new BitMask(bi.shape));
    res = compareRange(ctx, { ...task, wantMask: true });
    res.tuned.forEach((t, r) => { masks[r]!.words.set(t.words!); t.words = null; });
    baseBytes = ctx.base.readBytes(task.name);
  }
  res.profile = summarizeTensor(task.name, bi.dtype, baseBytes, masks, res.tuned.map((t) => t.nonFinite), req, counts, bins);
  return res;
}

/**
 * Cumulative run-mask counts of the straddling patterns, taken every `sub` entries of the
 * pass (sub a power of two ≥ 2^12, at most 8192 snapshots per tensor): snapshot c holds, for
 * straddler j, how many of its entries in [0, end of sub-chunk c) fell in each run mask.
 */
class Snapshots {
  readonly sub: number;
  readonly count: number;
  readonly cells: Uint32Array;
  private taken = 0;
  /** The kernel's live rows of the keys (views made once: copying them is one memcpy each). */
  private readonly rows: Uint32Array[];
  constructor(readonly keys: readonly number[], readonly runs: number, n: number, k: Bf16ProfileKernel) {
    let sub = 1 << 12;
    while (Math.ceil(n / sub) > 8192) sub *= 2;
    this.sub = sub;
    this.count = Math.ceil(n / sub);
    this.cells = new Uint32Array(keys.length === 0 ? 0 : this.count * keys.length * (1 << runs));
    this.rows = keys.map((key) => k.rowView(key));
  }
  take(): void {
    const M = 1 << this.runs, S = this.keys.length;
    for (let j = 0; j < S; j++) this.cells.set(this.rows[j]!, (this.taken * S + j) * M);
    this.taken++;
  }
  /** Entries of straddler j before the end of sub-chunk c. */
  occurrences(c: number, j: number): number {
    const M = 1 << this.runs, at = (c * this.keys.length + j) * M;
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
  lay: BinLayout, snap: Snapshots, counts: PatternCounts, masks: readonly BitMask[], h: Uint16Array, numBins: number,
): MagnitudeBinCounts {
  const R = masks.length, M = 1 << R, S = lay.strad.length;
  const binSize = new Float64Array(numBins);
  const perBin = masks.map(() => new Float64Array(numBins));
  for (let q = 0; q < lay.whole.length; q += 2) {
    const m = lay.whole[q]!, b = lay.whole[q + 1]!;
    binSize[b]! += counts.total[m]!;
    for (let r = 0; r < R; r++) perBin[r]![b]! += counts.changed[r]![m]!;
  }
  const words = masks.map((x) => x.words);
  const cum = new Float64Array(M), prev = new Float64Array(M);
  for (let j = 0; j < S; j++) {
    const x = lay.strad[j]!;
    prev.fill(0);
    let prevO = 0, bin = x.b0;
    for (const o of x.cuts) {
      // first sub-chunk whose end has more than o entries of the pattern
      let lo = 0, hi = snap.count - 1;
      while (lo < hi) { const mid = (lo + hi) >>> 1; if (snap.occurrences(mid, j) > o) hi = mid; else lo = mid + 1; }
      const c = lo;
      let seen = 0;
      if (c > 0) {
        const at = ((c - 1) * S + j) * M;
        for (let m = 0; m < M; m++) { cum[m] = snap.cells[at + m]!; seen += cum[m]!; }
      } else cum.fill(0);
      for (let i = c * snap.sub; seen < o; i++) {
        if ((h[i]! & 0x7fff) !== x.m) continue;
        let rm = 0;
        for (let r = 0; r < R; r++) rm |= ((words[r]![i >>> 5]! >>> (i & 31)) & 1) << r;
        cum[rm]!++;
        seen++;
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
