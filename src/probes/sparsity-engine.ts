/**
 * The inner loop of the sparsity probe: one range of one tensor compared against several
 * tuned models, reading each base chunk ONCE into a reused buffer and comparing it with
 * every tuned model's chunk in turn (read into a second reused buffer). Runs in-process
 * (--threads 1) or inside a worker (./../run/sparsity-worker.ts); results are integer
 * counts (plus mask words when asked), so the order in which ranges run cannot change the
 * output.
 */
import type { TensorSource } from '../io/checkpoint.js';
import { ITEMSIZE } from '../io/dtype.js';
import type { ProfileRequest, TensorProfile } from './locality-tensor.js';
import { popcount32 } from './mask.js';
import { ChunkScratch, type ProbeOptions, chunkWords, countNonFinite } from './update.js';

export interface EngineConfig {
  probe: ProbeOptions;
  compareProbes: boolean;
  /** Entries per chunk (a multiple of 32). */
  chunkElems: number;
}

/** Entries [start, end) of tensor `name`; `tuned` lists the tuned models paired for it. */
export interface RangeTask {
  name: string;
  start: number;
  end: number;
  tuned: number[];
  wantMask: boolean;
  /** Whole-tensor locality task (see ./locality-engine.ts): also profile the tensor's masks. */
  profile?: ProfileRequest;
}

export interface TunedRangeCounts {
  tuned: number;
  /** Entries changed under the primary rule. */
  changed: number;
  /** Entries where either side is NaN/Inf. */
  nonFinite: number;
  nanTuned: number;
  infTuned: number;
  /** Entries whose bf16 codes (after RNE rounding) differ. */
  bf16VisibleChanged: number;
  /** --compare-probes: abs says changed, the η (bf16) rule says unchanged. */
  absChangedBf16Unchanged: number;
  /** --compare-probes: the η rule says changed, abs says unchanged. */
  bf16ChangedAbsUnchanged: number;
  /** Primary-rule mask words of the range (bit 0 of word 0 = entry `start`), if wanted. */
  words: Uint32Array | null;
}

export interface RangeResult {
  name: string;
  start: number;
  end: number;
  nanBase: number;
  infBase: number;
  tuned: TunedRangeCounts[];
  /** The tensor's locality profile (profile tasks only). */
  profile?: TensorProfile;
}

/** Per-thread state: the scratch buffers and the opened checkpoints. */
export interface EngineContext {
  scratch: ChunkScratch;
  base: TensorSource;
  tuned: readonly TensorSource[];
  cfg: EngineConfig;
  /** Bytes read so far (progress). */
  onBytes?: (n: number) => void;
}

export function createScratch(cfg: EngineConfig): ChunkScratch {
  return new ChunkScratch(cfg.chunkElems);
}

export function compareRange(ctx: EngineContext, task: RangeTask): RangeResult {
  const { scratch: s, base, cfg } = ctx;
  const bi = base.info(task.name);
  const bs = ITEMSIZE[bi.dtype];
  const len = task.end - task.start;
  const res: RangeResult = { name: task.name, start: task.start, end: task.end, nanBase: 0, infBase: 0, tuned: [] };
  const infos = task.tuned.map((t) => ctx.tuned[t]!.info(task.name));
  for (const t of task.tuned) {
    res.tuned.push({
      tuned: t, changed: 0, nonFinite: 0, nanTuned: 0, infTuned: 0, bf16VisibleChanged: 0,
      absChangedBf16Unchanged: 0, bf16ChangedAbsUnchanged: 0,
      words: task.wantMask ? new Uint32Array(Math.ceil(len / 32)) : null,
    });
  }
  const chunk = Math.min(cfg.chunkElems, s.maxElems);
  const wp = new Uint32Array(chunk / 32), w2 = new Uint32Array(chunk / 32);
  const primary = cfg.probe.rule;
  const other = primary === 'bf16' ? 'abs' : 'bf16';
  for (let c = task.start; c < task.end; c += chunk) {
    const n = Math.min(chunk, task.end - c);
    const a = base.readBytes(task.name, c * bs, n * bs, s.baseBuffer(n * bs));
    ctx.onBytes?.(n * bs);
    let baseFlag = false;
    for (let k = 0; k < task.tuned.length; k++) {
      const r = res.tuned[k]!;
      const ti = infos[k]!;
      const ts = ITEMSIZE[ti.dtype];
      const b = ctx.tuned[task.tuned[k]!]!.readBytes(task.name, c * ts, n * ts, s.tunedBuffer(n * ts));
      ctx.onBytes?.(n * ts);
      // words only when a mask or the rule comparison needs them (else the count kernel)
      const pr = chunkWords(s, a, bi.dtype, b, ti.dtype, n, cfg.probe, r.words || cfg.compareProbes ? wp : null, primary);
      r.changed += pr.changed;
      r.nonFinite += pr.nonFinite;
      const groups = Math.ceil(n / 32);
      if (r.words) r.words.set(wp.subarray(0, groups), (c - task.start) >>> 5);
      if (cfg.compareProbes) {
        chunkWords(s, a, bi.dtype, b, ti.dtype, n, cfg.probe, w2, other);
        const eta = primary === 'bf16' ? wp : w2, abs = primary === 'bf16' ? w2 : wp;
        let absOnly = 0, etaOnly = 0;
        for (let g = 0; g < groups; g++) {
          absOnly += popcount32(abs[g]! & ~eta[g]!);
          etaOnly += popcount32(eta[g]! & ~abs[g]!);
        }
        r.absChangedBf16Unchanged += absOnly;
        r.bf16ChangedAbsUnchanged += etaOnly;
      }
      // bf16-visible: free when the primary already was the bitwise compare
      r.bf16VisibleChanged += bi.dtype === 'BF16' && ti.dtype === 'BF16' && primary === 'bf16' && cfg.probe.eta <= 2 ** -9
        ? pr.changed : s.bf16Visible(a, bi.dtype, b, ti.dtype, n);
      if (pr.nonFinite > 0) {
        const nf = countNonFinite(b, ti.dtype);
        r.nanTuned += nf.nan;
        r.infTuned += nf.inf;
        baseFlag = true;
      }
    }
    if (baseFlag) {
      const nf = countNonFinite(a, bi.dtype);
      res.nanBase += nf.nan;
      res.infBase += nf.inf;
    }
  }
  return res;
}
