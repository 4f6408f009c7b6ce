/**
 * Worker thread of the sparsity probe: opens its own copies of the checkpoints (file
 * descriptors are per thread) and runs `compareRange` on each task it is sent.
 */
import { openCheckpoint } from '../io/checkpoint.js';
import { type EngineConfig, type RangeResult, type RangeTask, compareRange, createScratch } from '../probes/sparsity-engine.js';
import { serveTasks } from './pool.js';

export interface SparsityWorkerData {
  base: string;
  tuned: string[];
  cfg: EngineConfig;
}

let ctx: Parameters<typeof compareRange>[0] | null = null;

serveTasks<RangeTask, RangeResult>((task, data) => {
  if (!ctx) {
    const d = data as SparsityWorkerData;
    ctx = { scratch: createScratch(d.cfg), base: openCheckpoint(d.base), tuned: d.tuned.map((t) => openCheckpoint(t)), cfg: d.cfg };
  }
  const result = compareRange(ctx, task);
  const transfer = result.tuned.flatMap((t) => (t.words ? [t.words.buffer as ArrayBuffer] : []));
  return { result, transfer };
});
