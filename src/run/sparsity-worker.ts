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
  /** Open the checkpoints at start-up, before the first task (a worker started early). */
  eager?: boolean;
}

// Loaded only when needed: a plain sparsity worker starts faster without it.
const runTask = (workerData as SparsityWorkerData | null)?.profile
  ? (await import('../probes/locality-engine.js')).runRangeTask
  : compareRange;

let ctx: EngineContext | null = null;
let openError: unknown = null;

function open(d: SparsityWorkerData): EngineContext {
  return { scratch: createScratch(d.cfg), base: openCheckpoint(d.base), tuned: d.tuned.map((t) => openCheckpoint(t)), cfg: d.cfg };
}

// Started early (while the main thread still prepares its tasks): open the checkpoints now. A
// failure is reported with the first task (the main thread opens the same files first, and
// names the file itself).
const early = workerData as SparsityWorkerData | null;
if (early?.eager) {
  try { ctx = open(early); } catch (e) { openError = e; }
}

serveTasks<RangeTask, RangeResult>((task, data) => {
  if (openError) throw openError;
  ctx ??= open(data as SparsityWorkerData);
  const result = runTask(ctx, task);
  const transfer = result.tuned.flatMap((t) => (t.words ? [t.words.buffer as ArrayBuffer] : []));
  if (result.profile?.image) transfer.push(result.profile.image.values.buffer as ArrayBuffer);
  for (const p of result.profile?.runImages ?? []) transfer.push(p.bytes.buffer as ArrayBuffer);
  return { result, transfer };
});
