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

const data = workerData as SparsityWorkerData;

// Loaded only when needed: a plain sparsity worker starts faster without it.
const runTask = data.profile
  ? (await import('../probes/locality-engine.js')).runRangeTask
  : compareRange;

// The checkpoints are opened at start-up, before the first task arrives, so a worker started
// early (while the main thread still prepares its tasks) does that in parallel. A failure is
// reported with the first task (the main thread opens the same files first, and names the file).
let ctx: EngineContext | null = null;
let openError: unknown = null;
try {
  ctx = { scratch: createScratch(data.cfg), base: openCheckpoint(data.base), tuned: data.tuned.map((t) => openCheckpoint(t)), cfg: data.cfg };
} catch (e) {
  openError = e;
}

serveTasks<RangeTask, RangeResult>((task) => {
  if (!ctx) throw openError;
  const result = runTask(ctx, task);
  const transfer = result.tuned.flatMap((t) => (t.words ? [t.words.buffer as ArrayBuffer] : []));
  if (result.profile?.image) transfer.push(result.profile.image.values.buffer as ArrayBuffer);
  for (const p of result.profile?.runImages ?? []) transfer.push(p.bytes.buffer as ArrayBuffer);
  return { result, transfer };
});
