/**
 * The report's heatmap data (`maps.json`, kind 'maps'): every tuned model's update mask of
 * every 2-D tensor, pooled by block means (locality's `poolGrid`) so the whole file stays
 * within a byte budget, quantised to one byte per pixel and stored base64. The consensus
 * map C = (1/R) Σ_r M^(r) is the mean of these images (pooling is linear), computed in
 * the browser. Written by `analyze` next to the other data files; `report` only reads it.
 */
import type { TensorSource } from '../../io/checkpoint.js';
import { parseTensorName } from '../../model/names.js';
import type { BitMask } from '../../probes/mask.js';
import { type PooledMask, poolMask } from '../../probes/locality.js';
import { envelope } from '../output.js';
import type { HeatmapTensor } from './model.js';

export interface MapsOptions {
  /** Total bytes of pixels across all images (default 6 MiB ≈ 8 MiB of base64). */
  budgetBytes: number;
  /** Longest side of any image, in pixels (default 256). */
  maxSide: number;
}

export const DEFAULT_MAPS: Readonly<MapsOptions> = { budgetBytes: 6 * 1024 * 1024, maxSide: 256 };

export interface MapsDocument {
  params: { pooling: string; budgetBytes: number; maxSide: number; quantisation: string };
  runs: string[];
  tensors: Record<string, HeatmapTensor>;
}

/**
 * Largest image side (pixels) such that `images` images of `tensors` tensors fit the
 * budget: side² · images ≤ budget, clamped to [32, maxSide].
 */
export function mapSide(tensors: number, runs: number, o: MapsOptions = DEFAULT_MAPS): number {
  const perImage = o.budgetBytes / Math.max(1, tensors * Math.max(1, runs));
  return Math.max(32, Math.min(o.maxSide, Math.floor(Math.sqrt(perImage))));
}

export { poolMask };

/** Collects the maps tensor by tensor, so a caller that already holds the masks adds them once. */
export class MapsCollector {
  readonly runs: string[];
  readonly side: number;
  private readonly o: MapsOptions;
  private readonly tensors: Record<string, HeatmapTensor> = {};

  /** `runs`: the tuned models' specs; `tensorCount`: how many tensors will be added (sets the pooling). */
  constructor(runs: readonly string[], tensorCount: number, options: Partial<MapsOptions> = {}) {
    this.o = { ...DEFAULT_MAPS, ...options };
    this.runs = [...runs];
    this.side = mapSide(tensorCount, runs.length, this.o);
  }

  /** `masks[r]` is run r's update mask of tensor `name`; `headDim` draws head boundaries. */
  add(name: string, masks: readonly BitMask[], headDim?: number): void {
    if (masks.length !== this.runs.length) throw new RangeError(`maps: ${masks.length} masks for ${this.runs.length} runs`);
    if (masks[0]!.shape.length !== 2) return;
    this.addPooled(name, masks[0]!.shape, masks.map((m) => poolMask(m, this.side)), headDim);
  }

  /**
   * Same as `add` from masks already pooled with `poolMask(mask, this.side)` (the locality
   * pass pools them in the worker that read them).
   */
  addPooled(name: string, shape: readonly number[], pooled: readonly PooledMask[], headDim?: number): void {
    if (pooled.length !== this.runs.length) throw new RangeError(`maps: ${pooled.length} masks for ${this.runs.length} runs`);
    if (shape.length !== 2) return;
    const t: HeatmapTensor = { shape: [shape[0]!, shape[1]!], size: [0, 0], pool: [1, 1], runs: {} };
    pooled.forEach((p, r) => {
      t.size = p.size; t.pool = p.pool;
      t.runs[this.runs[r]!] = Buffer.from(p.bytes.buffer, p.bytes.byteOffset, p.bytes.byteLength).toString('base64');
    });
    const kind = parseTensorName(name).kind;
    if (headDim && (kind === 'q' || kind === 'k' || kind === 'v')) { t.headDim = headDim; t.headAxis = 'rows'; }
    else if (headDim && kind === 'o') { t.headDim = headDim; t.headAxis = 'cols'; }
    this.tensors[name] = t;
  }

  finish(): ReturnType<typeof envelope<MapsDocument>> {
    const names = Object.keys(this.tensors).sort();
    const tensors: Record<string, HeatmapTensor> = {};
    for (const n of names) tensors[n] = this.tensors[n]!;
    return envelope('maps', {
      params: {
        pooling: `block mean over ceil(rows/${this.side})×ceil(cols/${this.side}) entries (at most ${this.side}×${this.side} pixels per image)`,
        budgetBytes: this.o.budgetBytes, maxSide: this.o.maxSide,
        quantisation: 'byte = round(255 × fraction of the block’s entries changed)',
      },
      runs: this.runs,
      tensors,
    });
  }
}

/** head_dim from a checkpoint's config, when it has one. */
export function headDimOf(base: TensorSource): number | undefined {
  return base.config?.headDim;
}
