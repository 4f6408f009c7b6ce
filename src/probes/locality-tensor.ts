/**
 * Everything the locality probe keeps of ONE tensor, computed where its masks are (a worker
 * of the single-read pass, or in-process): the per-tensor summary (Jaccard pairs, both
 * baselines, consensus histogram), its per-binade change counts and, when asked, its pooled
 * consensus image. The masks and base bytes themselves never leave the thread that read them.
 */
import { type DType, u16View } from '../io/dtype.js';
import { type ChangeRateSlots, changeRateSlotsFromMasks, changeRateSlotsFromPatterns } from './changerate.js';
import {
  type Grid, type MagnitudeBinCounts, type PooledMask, type TensorLocality, MAX_IMAGE_SIDE, bf16PatternCounts, consensusCounts, magnitudeProfileFromPatterns, matrixShape, poolGrid,
  poolMask, tensorLocality,
} from './locality.js';
import { magnitudeBins } from './magnitude.js';
import type { BitMask } from './mask.js';
import type { PatternCounts } from './profile-kernel.js';

/** What the pass asks of a tensor (plain data: it crosses to worker threads). */
export interface ProfileRequest {
  /** Equal-count |W0| bins of the magnitude-matched baseline. */
  numBins: number;
  /** Keep the consensus image pooled to this longest side (0 = full resolution), or null for none. */
  image: number | null;
  /** Also pool each run's mask to at most this many cells per side (`poolMask`, the report's heatmaps), or null. */
  runImages?: number | null;
}

export interface TensorProfile {
  tensor: TensorLocality;
  changeRate: ChangeRateSlots;
  image: Grid | null;
  /** Each run's pooled mask (when asked for; 2-D tensors only). */
  runImages: PooledMask[] | null;
}

/**
 * The profile of one tensor from its base bytes and R update masks. `counts` are the fused
 * kernel's joint histogram of the same tensor when it ran (bf16 only), `bins` its bin counts
 * when the pass computed them; without them the same numbers come from JS passes.
 */
export function summarizeTensor(
  name: string, dtype: DType, baseBytes: Uint8Array, masks: readonly BitMask[], nonFinite: readonly number[],
  req: ProfileRequest, counts?: PatternCounts, bins?: MagnitudeBinCounts,
): TensorProfile {
  const R = masks.length;
  const numel = masks[0]!.length;
  let tensor: TensorLocality;
  let changeRate: ChangeRateSlots;
  if (dtype === 'BF16' && numel > 0) {
    const h = u16View(baseBytes);
    const pc = counts ?? bf16PatternCounts(h, masks);
    const prof = bins ?? magnitudeProfileFromPatterns(h, masks, pc.total, pc.changed, req.numBins);
    const given = 'consensus' in pc ? pc.consensus : undefined;
    tensor = tensorLocality(name, masks, { ...prof, consensusHistogram: given }, req.numBins, nonFinite, undefined, counts?.perRunMask);
    changeRate = changeRateSlotsFromPatterns('BF16', prof.patternTotal, prof.patternChanged);
  } else {
    const bins = numel > 0 ? magnitudeBins(baseBytes, dtype, req.numBins) : null;
    tensor = tensorLocality(name, masks, bins, req.numBins, nonFinite);
    changeRate = changeRateSlotsFromMasks(baseBytes, dtype, masks);
  }
  let image: Grid | null = null;
  if (req.image !== null) {
    const [rows, cols] = matrixShape(masks[0]!.shape);
    const max = req.image > 0 ? req.image : Math.min(MAX_IMAGE_SIDE, Math.max(rows, cols));
    image = poolGrid(rows, cols, consensusCounts(masks), max, max, 1 / R);
  }
  const runImages = req.runImages != null && masks[0]!.shape.length === 2 ? masks.map((m) => poolMask(m, req.runImages!)) : null;
  return { tensor, changeRate, image, runImages };
}
