/**
 * Worker thread of the sparsity probe: opens its own copies of the checkpoints (file
 * descriptors are per thread) and runs each task it is sent (`runRangeTask`: a range
 * compare, or a whole-tensor locality profile).
 */
import { openCheckpoint } from '../io/checkpoint.js';
import { workerData } from 'node:worker_threads';
import { type EngineConfig, type EngineContext, type RangeResult, type RangeTask, compareRange, createScratch } from '../probes/sparsity-engine.js';
import { serveTasks } from './pool.js';

export interface SparsityWorkerData {
  base: string;
  tuned: string[];
  cfg: EngineConfig;
  /** Whether locality profile tasks will come (then the locality engine is loaded). */
  profile: boolean;
}

// Loaded only when needed: a plain sparsity worker starts faster without it.
const runTask = (workerData as SparsityWorkerData | null)?.profile
  ? (await import('../probes/locality-engine.js')).runRangeTask
  : compareRange;

let ctx: EngineContext | null = null;

serveTasks<RangeTask, RangeResult>((task, data) => {
  if (!ctx) {
    const d = data as SparsityWorkerData;
    ctx = { scratch: createScratch(d.cfg), base: openCheckpoint(d.base), tuned: d.tuned.map((t) => openCheckpoint(t)), cfg: d.cfg };
  }
  const result = runTask(ctx, task);
  const transfer = result.tuned.flatMap((t) => (t.words ? [t.words.buffer as ArrayBuffer] : []));
  if (result.profile?.image) transfer.push(result.profile.image.values.buffer as ArrayBuffer);
  for (const p of result.profile?.runImages ?? []) transfer.push(p.bytes.buffer as ArrayBuffer);
  return { result, transfer };
});
