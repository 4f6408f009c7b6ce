/**
 * Update ratios over training (paper §2.3, Figs. 3, 12–14; SPEC §2): one run's checkpoints
 * S_1..S_n against the base, in step order. Per 2-D tensor and step t:
 *   row ratio    ρ_i(t) = (1/n_in)  Σ_j M_ij(t)   (row i = output feature i)
 *   column ratio κ_j(t) = (1/n_out) Σ_i M_ij(t)
 * smoothed by a centered moving average of window 3 (at the two ends the window is cut to
 * the two available points: y_0 = (x_0 + x_1)/2, y_{n−1} = (x_{n−2} + x_{n−1})/2), with head
 * boundaries (every head_dim rows of q/k/v, every head_dim columns of o) from config.json.
 *
 * Stability of where updates land: Spearman rank correlation (average ranks for ties) of
 * the raw profile between consecutive steps and against the final step, and the overlap
 * of the top-10% rows/columns with the final step's top 10%.
 *
 * Each checkpoint is read once; per tensor only the current masks are held, each reduced to
 * its row and column counts.
 */
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { type Table, envelope } from '../report/output.js';
import { type TensorSource, openCheckpoint } from '../io/checkpoint.js';
import { type AttentionLayout, requireAttentionLayout } from '../model/config.js';
import { type ModuleKind, parseTensorName } from '../model/names.js';
import { KIND_ORDER, forEachTensorMasks, readUpdateMasksOnce, selectTensors } from './locality.js';
import type { BitMask } from './mask.js';
import { DEFAULT_PROBE, type ProbeOptions } from './update.js';

export const DYNAMICS_DEFINITIONS = {
  rowRatio: 'ρ_i(t) = (1/n_in) Σ_j M_ij(t), row i = output feature i',
  colRatio: 'κ_j(t) = (1/n_out) Σ_i M_ij(t), column j = input feature j',
  smoothing: 'centered moving average, window 3; at each end the window is cut to the 2 available points',
  sparsity: 'fraction of entries NOT changed vs the base (SPEC §1)',
  stability: 'Spearman rank correlation (average ranks for ties) of the raw profile between consecutive steps and vs the final step; topOverlap = |top-10% indices at t ∩ top-10% at final| / |top-10%| (ties at the cut broken by index)',
  heads: 'head boundaries every head_dim rows of q/k/v and every head_dim columns of o (config.json)',
} as const;

/** Step number from a checkpoint path: checkpoint-100, step_100, global_step100, step100, ... */
export function parseStep(spec: string): number | null {
  const parts = path.resolve(spec).split(path.sep).reverse();
  for (const p of parts) {
    const m = /(?:^|[^a-z])(?:checkpoint|global_step|global-step|step|iter|ckpt)[-_]?(\d+)(?:$|[^0-9])/i.exec(p.replace(/\.safetensors$/, ''));
    if (m) return Number(m[1]);
  }
  return null;
}

/** Centered moving average of window 3; each end averages the two available points. */
export function movingAverage3(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const y = new Float64Array(n);
  if (n === 1) { y[0] = x[0]!; return y; }
  for (let i = 0; i < n; i++) {
    const lo = Math.max(0, i - 1), hi = Math.min(n - 1, i + 1);
    let s = 0;
    for (let j = lo; j <= hi; j++) s += x[j]!;
    y[i] = s / (hi - lo + 1);
  }
  return y;
}

/** Ranks 1..n with ties given their average rank. */
export function averageRanks(x: ArrayLike<number>): Float64Array {
  const n = x.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a]! - x[b]! || a - b);
  const r = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && x[idx[j + 1]!]! === x[idx[i]!]!) j++;
    const avg = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) r[idx[k]!] = avg;
    i = j + 1;
  }
  return r;
}

/** Spearman rank correlation = Pearson correlation of average ranks; NaN if either is constant. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError('spearman: lengths differ');
  const n = a.length;
  if (n < 2) return NaN;
  const ra = averageRanks(a), rb = averageRanks(b);
  const m = (n + 1) / 2;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    const x = ra[i]! - m, y = rb[i]! - m;
    sab += x * y; saa += x * x; sbb += y * y;
  }
  return saa === 0 || sbb === 0 ? NaN : sab / Math.sqrt(saa * sbb);
}

/** Indices of the top `frac` values (at least one), ties at the cut broken by lower index. */
export function topIndices(x: ArrayLike<number>, frac = 0.1): Set<number> {
  const k = Math.max(1, Math.floor(x.length * frac));
  const idx = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[b]! - x[a]! || a - b);
  return new Set(idx.slice(0, k));
}

/** |top(a) ∩ top(b)| / |top| */
export function topOverlap(a: ArrayLike<number>, b: ArrayLike<number>, frac = 0.1): number {
  const ta = topIndices(a, frac), tb = topIndices(b, frac);
  let c = 0;
  for (const i of ta) if (tb.has(i)) c++;
  return c / ta.size;
}

export interface ProfileStability {
  /** Spearman(profile(t−1), profile(t)) for t = 1..n−1 (index 0 is null). */
  consecutive: (number | null)[];
  /** Spearman(profile(t), profile(final)). */
  vsFinal: (number | null)[];
  /** Top-10% overlap with the final step. */
  topOverlapVsFinal: (number | null)[];
}

function stability(profiles: readonly Float64Array[]): ProfileStability {
  const n = profiles.length;
  const fin = profiles[n - 1]!;
  const nn = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return {
    consecutive: profiles.map((p, t) => (t === 0 ? null : nn(spearman(profiles[t - 1]!, p)))),
    vsFinal: profiles.map((p) => nn(spearman(p, fin))),
    topOverlapVsFinal: profiles.map((p) => nn(topOverlap(p, fin))),
  };
}

export interface TensorDynamics {
  name: string;
  layer: number | null;
  kind: ModuleKind;
  shape: number[];
  /** Which axis heads lie along, and the boundary indices (multiples of head_dim, exclusive of 0 and the end). */
  headAxis: 'rows' | 'cols' | null;
  headBoundaries: number[];
  /** Sparsity (unchanged fraction) at each step. */
  sparsity: number[];
  rowStability: ProfileStability;
  colStability: ProfileStability;
  /** Profiles per step (raw and smoothed); only kept for tensors selected for profiles. */
  rowRatios?: number[][];
  colRatios?: number[][];
  rowSmoothed?: number[][];
  colSmoothed?: number[][];
}

export interface DynamicsOptions {
  probe: ProbeOptions;
  allTensors: boolean;
  match?: RegExp;
  /** Tensors whose full profiles are kept in the result (others: summaries only). */
  profilesFor?: (name: string) => boolean;
  /** Worker threads of the mask pass (default: all cores). */
  threads?: number;
  onTensor?: (name: string, index: number, total: number) => void;
}

export interface DynamicsResult {
  params: { probe: ProbeOptions; tensors: 'linear-2d' | 'all'; match: string | null; definitions: typeof DYNAMICS_DEFINITIONS };
  base: string;
  checkpoints: string[];
  steps: number[];
  /** From config.json, or null when the base has none (no head boundaries then). */
  heads: { headDim: number; numHeads: number; numKvHeads: number } | null;
  tensors: TensorDynamics[];
  /** Tensors some checkpoint lacks (skipped). */
  incomplete: string[];
  /** Pooled sparsity per step: all tensors, and per module kind. */
  sparsityByKind: { kind: ModuleKind | 'all'; numel: number; sparsity: number[] }[];
}

/** Head boundaries of a tensor along its head axis. */
export function headBoundaries(kind: ModuleKind, shape: readonly number[], layout: AttentionLayout | null): { axis: 'rows' | 'cols' | null; at: number[] } {
  if (!layout || shape.length !== 2) return { axis: null, at: [] };
  const axis = kind === 'q' || kind === 'k' || kind === 'v' ? 'rows' : kind === 'o' ? 'cols' : null;
  if (!axis) return { axis: null, at: [] };
  const len = axis === 'rows' ? shape[0]! : shape[1]!;
  const at: number[] = [];
  for (let b = layout.headDim; b < len; b += layout.headDim) at.push(b);
  return { axis, at };
}

/** Resolves step numbers: given ones, or parsed from the paths; errors name the culprit. */
export function resolveSteps(specs: readonly string[], given?: readonly number[]): number[] {
  let steps: number[];
  if (given && given.length > 0) {
    if (given.length !== specs.length) throw new UsageError(`--steps has ${given.length} values for ${specs.length} checkpoints`);
    steps = [...given];
  } else {
    steps = specs.map((s) => {
      const v = parseStep(s);
      if (v === null) throw new UsageError(`cannot read a step number from ${JSON.stringify(s)} (expected a name like checkpoint-100, step_100, global_step100); pass --steps`);
      return v;
    });
  }
  for (let i = 1; i < steps.length; i++) {
    if (!(steps[i]! > steps[i - 1]!)) throw new UsageError(`checkpoints must be in increasing step order (step ${steps[i]} after ${steps[i - 1]}: ${specs[i]})`);
  }
  return steps;
}

/** Per-tensor work shared by both entry points. */
class DynamicsAccumulator {
  readonly tensors: TensorDynamics[] = [];
  private readonly pooled = new Map<ModuleKind | 'all', { numel: number; changed: number[] }>();
  constructor(private readonly o: DynamicsOptions, private readonly layout: AttentionLayout | null) {}

  add(name: string, masks: BitMask[]): void {
    const parsed = parseTensorName(name);
    const shape = [...masks[0]!.shape];
    const numel = masks[0]!.length;
    const rows = shape.length >= 2 ? masks[0]!.rows : 1, cols = shape.length >= 2 ? masks[0]!.cols : numel;
    const rowP: Float64Array[] = [], colP: Float64Array[] = [];
    const sparsity: number[] = [];
    const changedPerStep: number[] = [];
    for (const m of masks) {
      const c = m.count();
      changedPerStep.push(c);
      sparsity.push(numel === 0 ? NaN : 1 - c / numel);
      rowP.push(Float64Array.from(m.rowCounts(), (v) => v / cols));
      colP.push(Float64Array.from(m.colCounts(), (v) => v / rows));
    }
    for (const key of [parsed.kind, 'all'] as const) {
      const acc = this.pooled.get(key) ?? { numel: 0, changed: new Array<number>(masks.length).fill(0) };
      acc.numel += numel;
      changedPerStep.forEach((c, t) => { acc.changed[t]! += c; });
      this.pooled.set(key, acc);
    }
    const hb = headBoundaries(parsed.kind, shape, this.layout);
    const td: TensorDynamics = {
      name, layer: parsed.layer, kind: parsed.kind, shape, headAxis: hb.axis, headBoundaries: hb.at,
      sparsity, rowStability: stability(rowP), colStability: stability(colP),
    };
    if (this.o.profilesFor?.(name)) {
      td.rowRatios = rowP.map((p) => [...p]);
      td.colRatios = colP.map((p) => [...p]);
      td.rowSmoothed = rowP.map((p) => [...movingAverage3(p)]);
      td.colSmoothed = colP.map((p) => [...movingAverage3(p)]);
    }
    this.tensors.push(td);
  }

  finish(baseSpec: string, checkpoints: readonly string[], steps: readonly number[], incomplete: string[]): DynamicsResult {
    const o = this.o, layout = this.layout;
    const sparsityByKind = [...this.pooled].map(([kind, a]) => ({ kind, numel: a.numel, sparsity: a.changed.map((c) => (a.numel === 0 ? NaN : 1 - c / a.numel)) }))
      .sort((a, b) => (a.kind === 'all' ? -1 : b.kind === 'all' ? 1 : KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind)));
    return {
      params: { probe: { ...o.probe }, tensors: o.allTensors ? 'all' : 'linear-2d', match: o.match ? o.match.source : null, definitions: DYNAMICS_DEFINITIONS },
      base: baseSpec,
      checkpoints: [...checkpoints],
      steps: [...steps],
      incomplete,
      heads: layout ? { headDim: layout.headDim, numHeads: layout.numHeads, numKvHeads: layout.numKvHeads } : null,
      tensors: this.tensors,
      sparsityByKind,
    };
  }
}

function checkArgs(n: number, steps: readonly number[]): void {
  if (n < 1) throw new UsageError('dynamics needs at least one checkpoint');
  if (steps.length !== n) throw new UsageError(`${steps.length} step numbers for ${n} checkpoints`);
}

function layoutOf(base: TensorSource): AttentionLayout | null {
  return base.config ? requireAttentionLayout(path.join(base.root, 'config.json'), base.config) : null;
}

/**
 * The dynamics probe in-process (single thread) over opened checkpoints in step order; each
 * file is read once (`readUpdateMasksOnce`).
 */
export function runDynamics(base: TensorSource, checkpoints: readonly TensorSource[], steps: readonly number[], options: Partial<DynamicsOptions> = {}): DynamicsResult {
  const o: DynamicsOptions = { probe: DEFAULT_PROBE, allTensors: false, ...options };
  checkArgs(checkpoints.length, steps);
  const acc = new DynamicsAccumulator(o, layoutOf(base));
  const names = selectTensors(base, { all: o.allTensors, match: o.match });
  names.forEach((name, idx) => {
    acc.add(name, readUpdateMasksOnce(base, checkpoints, name, o.probe).masks);
    o.onTensor?.(name, idx, names.length);
  });
  return acc.finish(base.spec, checkpoints.map((c) => c.spec), steps, []);
}

/**
 * The dynamics probe over checkpoint specs through the sparsity probe's single-read pass
 * (worker threads): each checkpoint file is read once.
 */
export async function runDynamicsPass(baseSpec: string, checkpoints: readonly string[], steps: readonly number[], options: Partial<DynamicsOptions> = {}): Promise<DynamicsResult> {
  const o: DynamicsOptions = { probe: DEFAULT_PROBE, allTensors: false, ...options };
  checkArgs(checkpoints.length, steps);
  const base = openCheckpoint(baseSpec);
  let acc: DynamicsAccumulator;
  let names: Set<string>;
  try {
    acc = new DynamicsAccumulator(o, layoutOf(base));
    names = new Set(selectTensors(base, { all: o.allTensors, match: o.match }));
  } finally {
    base.close();
  }
  let idx = 0;
  const pass = await forEachTensorMasks(baseSpec, checkpoints, { probe: o.probe, threads: o.threads, filter: (n) => names.has(n) }, (name, masks) => {
    acc.add(name, masks);
    o.onTensor?.(name, idx++, names.size);
  });
  return acc.finish(baseSpec, checkpoints, steps, pass.incomplete);
}

/** Mean of the finite entries (NaN if none). */
function meanFinite(xs: readonly (number | null)[]): number {
  let s = 0, n = 0;
  for (const x of xs) if (x !== null && Number.isFinite(x)) { s += x; n++; }
  return n === 0 ? NaN : s / n;
}

/**
 * Tables: `sparsity` (one row per step: pooled sparsity of all tensors and of each kind),
 * `tensors` (per tensor: final sparsity, mean Spearman between consecutive steps, Spearman
 * of the first step vs the final one, for rows and columns), `profiles` (long format:
 * tensor, axis, step, index, raw, smoothed; only tensors with kept profiles).
 */
export function dynamicsTables(d: DynamicsResult): Record<string, Table> {
  const sparsity: Table = {
    columns: ['step', ...d.sparsityByKind.map((s) => (s.kind === 'all' ? 'all' : s.kind))],
    rows: d.steps.map((step, t) => [step, ...d.sparsityByKind.map((s) => s.sparsity[t]!)]),
  };
  const tensors: Table = {
    columns: ['tensor', 'final_sparsity', 'row_spearman_consecutive_mean', 'row_spearman_first_vs_final', 'row_top10_overlap_first_vs_final',
      'col_spearman_consecutive_mean', 'col_spearman_first_vs_final', 'col_top10_overlap_first_vs_final'],
    rows: d.tensors.map((t) => [
      t.name, t.sparsity[t.sparsity.length - 1]!,
      meanFinite(t.rowStability.consecutive), t.rowStability.vsFinal[0] ?? null, t.rowStability.topOverlapVsFinal[0] ?? null,
      meanFinite(t.colStability.consecutive), t.colStability.vsFinal[0] ?? null, t.colStability.topOverlapVsFinal[0] ?? null,
    ]),
  };
  const profiles: Table = { columns: ['tensor', 'axis', 'step', 'index', 'ratio', 'smoothed'], rows: [] };
  for (const t of d.tensors) {
    for (const [axis, raw, sm] of [['row', t.rowRatios, t.rowSmoothed], ['col', t.colRatios, t.colSmoothed]] as const) {
      if (!raw || !sm) continue;
      raw.forEach((p, k) => p.forEach((v, i) => profiles.rows.push([t.name, axis, d.steps[k]!, i, v, sm[k]![i]!])));
    }
  }
  return { sparsity, tensors, profiles };
}

/** The JSON document of a dynamics result. */
export function dynamicsDocument(d: DynamicsResult): ReturnType<typeof envelope> {
  return envelope('dynamics', d);
}
