/**
 * The report's parts of `rlvr-lens analyze` (src/run/analyze.ts):
 * - `mapsStage` writes `maps.json`, the pooled update-mask images of every 2-D linear
 *   weight and tuned model behind the report's heatmaps. It takes the masks from the
 *   sparsity stage's single read of the checkpoints (`mapsOnMask(ctx)` passed as that
 *   stage's `onMask`); run alone, it makes its own pass.
 * - `writeReport` (./index.ts) runs after the manifest, over everything written.
 */
import { openCheckpoint } from '../../io/checkpoint.js';
import { isLinearWeight, parseTensorName } from '../../model/names.js';
import type { PooledMask } from '../../probes/locality.js';
import type { BitMask } from '../../probes/mask.js';
import { updateSparsity } from '../../probes/sparsity.js';
import type { AnalyzeContext, AnalyzeStage } from '../../run/analyze.js';
import { MapsCollector, headDimOf } from './maps.js';

interface SharedMaps {
  collector: MapsCollector;
  onMask: (tunedIndex: number, name: string, mask: BitMask) => void;
  addPooled: (name: string, shape: readonly number[], images: PooledMask[]) => void;
  /** True once a pass has fed every mask. */
  fed: boolean;
}

const KEY = 'report-maps';

function sharedMaps(ctx: AnalyzeContext): SharedMaps {
  let s = ctx.shared.get(KEY) as SharedMaps | undefined;
  if (s) return s;
  const base = openCheckpoint(ctx.base);
  let linear: Set<string>;
  let headDim: number | undefined;
  try {
    linear = new Set(base.names.filter((n) => isLinearWeight(parseTensorName(n), base.info(n).shape)));
    headDim = headDimOf(base);
  } finally {
    base.close();
  }
  const collector = new MapsCollector(ctx.tuned, linear.size);
  const pending = new Map<string, (BitMask | undefined)[]>();
  const R = ctx.tuned.length;
  s = {
    collector, fed: false,
    onMask(r, name, mask) {
      if (!linear.has(name)) return;
      const ms = pending.get(name) ?? new Array<BitMask | undefined>(R).fill(undefined); // filled: every() skips holes
      ms[r] = mask;
      if (ms.every((m) => m !== undefined)) { pending.delete(name); collector.add(name, ms as BitMask[], headDim); } else pending.set(name, ms);
    },
    addPooled(name, shape, images) {
      if (linear.has(name)) collector.addPooled(name, shape, images, headDim);
    },
  };
  ctx.shared.set(KEY, s);
  return s;
}

/**
 * The locality pass's sink for masks it pools in its workers (when the sparsity stage runs
 * as part of that pass): the pooling side to ask for, and where to add the pooled masks.
 */
export function mapsPooledSink(ctx: AnalyzeContext): { side: number; add: (name: string, shape: readonly number[], images: PooledMask[]) => void } {
  const s = sharedMaps(ctx);
  s.fed = true;
  return { side: s.collector.side, add: s.addPooled };
}

/** The sparsity stage's `onMask`: feeds the report's maps from the same read. */
export function mapsOnMask(ctx: AnalyzeContext): (tunedIndex: number, name: string, mask: BitMask) => void {
  const s = sharedMaps(ctx);
  s.fed = true;
  return s.onMask;
}

export const mapsStage: AnalyzeStage = {
  name: 'maps',
  description: 'pooled update-mask images (per tensor and tuned model) for the HTML report’s mask and consensus heatmaps',
  enabled(ctx) {
    return ctx.options.shard ? 'not sharded (the report is built from merged folders)' : null;
  },
  async run(ctx) {
    const s = sharedMaps(ctx);
    if (!s.fed) {
      // No sparsity pass fed us (e.g. --stages maps): read the masks ourselves.
      await updateSparsity(ctx.base, ctx.tuned, { probe: ctx.options.probe, threads: ctx.options.threads, onMask: s.onMask });
    }
    return [{ name: 'maps', doc: s.collector.finish() }];
  },
};
