/**
 * The locality probe's per-tensor task inside the single-read pass: a whole tensor against R
 * tuned models, read once, masks built where they are read, and only the tensor's profile
 * (./locality-tensor.ts) plus its sparsity counts sent back. All-bf16 tensors under the
 * bitwise η rule go through the fused WebAssembly kernel (./profile-kernel.ts), which
 * compares and counts in one pass; anything else (other dtypes, the abs rule, R > 8, no
 * WebAssembly SIMD) takes the generic compare followed by the JS accounting — same numbers.
 */
import { BitMask } from './mask.js';
import { summarizeTensor } from './locality-tensor.js';
import { Bf16ProfileKernel, profileKernelAvailable } from './profile-kernel.js';
import { type EngineContext, type RangeResult, type RangeTask, compareRange } from './sparsity-engine.js';
import { countNonFinite, countNonFinitePairsBf16, isBitwiseFastPath } from './update.js';

/** Per-thread fused kernels, one per run count (they hold a few MB each). */
const kernels = new WeakMap<EngineContext, Map<number, Bf16ProfileKernel>>();
/** Per-thread buffer for a whole base tensor, reused (grown) across tasks: no per-tensor allocation. */
const baseBuffers = new WeakMap<EngineContext, Uint8Array>();

function baseBuffer(ctx: EngineContext, bytes: number): Uint8Array {
  let b = baseBuffers.get(ctx);
  if (!b || b.byteLength < bytes) { b = new Uint8Array(Math.max(bytes, Math.ceil((b?.byteLength ?? 0) * 1.5))); baseBuffers.set(ctx, b); }
  return b.subarray(0, bytes);
}

function kernelFor(ctx: EngineContext, R: number): Bf16ProfileKernel {
  let m = kernels.get(ctx);
  if (!m) { m = new Map(); kernels.set(ctx, m); }
  let k = m.get(R);
  if (!k) { k = new Bf16ProfileKernel(R, ctx.cfg.chunkElems); m.set(R, k); }
  return k;
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
  const masks = task.tuned.map(() => new BitMask(bi.shape));
  let res: RangeResult;
  let baseBytes: Uint8Array;
  let counts;
  if (fusedEligible(ctx, task) && bi.numel > 0) {
    const k = kernelFor(ctx, R);
    const chunk = k.maxElems;
    baseBytes = baseBuffer(ctx, bi.byteLength);
    res = {
      name: task.name, start: 0, end: bi.numel, nanBase: 0, infBase: 0,
      tuned: task.tuned.map((t) => ({
        tuned: t, changed: 0, nonFinite: 0, nanTuned: 0, infTuned: 0, bf16VisibleChanged: 0,
        absChangedBf16Unchanged: 0, bf16ChangedAbsUnchanged: 0, words: null,
      })),
    };
    for (let c = 0; c < bi.numel; c += chunk) {
      const n = Math.min(chunk, bi.numel - c);
      const a = ctx.base.readBytes(task.name, c * 2, n * 2, k.baseRegion(n * 2));
      ctx.onBytes?.(n * 2);
      baseBytes.set(a, c * 2);
      for (let r = 0; r < R; r++) {
        ctx.tuned[task.tuned[r]!]!.readBytes(task.name, c * 2, n * 2, k.tunedRegion(r, n * 2));
        ctx.onBytes?.(n * 2);
      }
      k.run(n);
      for (let r = 0; r < R; r++) masks[r]!.words.set(k.words(r, n), c >>> 5);
      if (k.nonFiniteSeen()) {
        // rare (an all-ones exponent somewhere): exact counts as compareRange takes them
        let baseFlag = false;
        for (let r = 0; r < R; r++) {
          const b = k.tunedRegion(r, n * 2);
          const nf = countNonFinitePairsBf16(a, b, n);
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
    counts = k.take();
    res.tuned.forEach((t, r) => {
      let c = 0;
      for (let m = 0; m < counts!.perRunMask.length; m++) if ((m >>> r) & 1) c += counts!.perRunMask[m]!;
      // the bitwise compare is the bf16-visible rule itself
      t.changed = c;
      t.bf16VisibleChanged = c;
    });
  } else {
    res = compareRange(ctx, { ...task, wantMask: true });
    res.tuned.forEach((t, r) => { masks[r]!.words.set(t.words!); t.words = null; });
    baseBytes = ctx.base.readBytes(task.name);
  }
  res.profile = summarizeTensor(task.name, bi.dtype, baseBytes, masks, res.tuned.map((t) => t.nonFinite), req, counts);
  return res;
}
