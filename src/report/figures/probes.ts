/**
 * Figures from probe results (locality, dynamics, change rate) and for single tensors
 * (update mask, consensus map): adapters from result objects to the plain figure data
 * interfaces in figures.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from '../../errors.js';
import { ensureDir } from '../../io/writer.js';
import type { ModuleKind } from '../../model/names.js';
import type { ChangeRateResult } from '../../probes/changerate.js';
import type { SparsityDoc } from '../../probes/sparsity.js';
import type { PrincipalDoc, ReferenceMask, SpectrumDoc } from '../../run/geometry.js';
import type { DynamicsResult, TensorDynamics } from '../../probes/dynamics.js';
import { type ConsensusImage, type Grid, KIND_ORDER, type LocalityResult, MAX_IMAGE_SIDE, kindLabel } from '../../probes/locality.js';
import type { BitMask } from '../../probes/mask.js';
import { poolGrid, matrixShape } from '../../probes/locality.js';
import type { ProbeOptions } from '../../probes/update.js';
import {
  type Figure, type LayerSpectralData, type OverlapByLayerData, type SparsityGridData, type SpectrumCurvesData, changeRateFigure,
  layerSpectralFigure, overlapFigure, spectrumFigure, jaccardFigure, localityBarsFigure, ratioCurvesFigure, shortLabel, sparsityGridFigure,
  sparsityStepsFigure, tensorHeatmapFigure,
} from './figures.js';
import { writeFigure } from './render.js';

export function probeSentence(p: ProbeOptions): string {
  return p.rule === 'bf16' ? `Probe: bf16-aware rule |w+ − w0| ≤ η·max(|w0|,|w+|), η = ${p.eta}.` : `Probe: absolute rule |w+ − w0| ≤ ${p.tol}.`;
}

/** Heatmap of one update mask (pooled: fraction of entries changed per block). */
export function maskFigure(name: string, mask: BitMask, maxSize: number, probe: ProbeOptions, runLabel?: string): Figure {
  const [rows, cols] = matrixShape(mask.shape);
  const max = maxSize > 0 ? maxSize : Math.min(MAX_IMAGE_SIDE, Math.max(rows, cols));
  const grid = poolGrid(rows, cols, mask, max, max);
  const full = grid.pool[0] === 1 && grid.pool[1] === 1;
  return {
    ...tensorHeatmapFigure({
      name, grid, title: `Update mask${runLabel ? ` (${runLabel})` : ''}: ${name}`,
      valueLabel: full ? 'changed (1) / unchanged (0)' : 'fraction of entries changed',
      note: `${probeSentence(probe)} Density ${(mask.density() * 100).toFixed(2)}% changed.`,
    }),
    kind: 'mask',
  };
}

/** Heatmap of a consensus map C = (1/R) Σ_r M^(r) (pooled: mean of C per block). */
export function consensusFigure(img: ConsensusImage, probe: ProbeOptions): Figure {
  return {
    ...tensorHeatmapFigure({
      name: img.name, grid: img.grid, title: `Consensus of ${img.runs} runs' update masks: ${img.name}`,
      valueLabel: 'consensus C (fraction of runs)', colormap: 'viridis',
      note: `C_ij = (1/R) Σ_r M^(r)_ij with R = ${img.runs}: 1 = changed by every run. ${probeSentence(probe)}`,
    }),
    kind: 'consensus',
  };
}

/** Consensus grid of a set of masks (for the figure command). */
export function consensusImageOf(name: string, masks: readonly BitMask[], counts: Uint8Array, maxSize: number): ConsensusImage {
  const [rows, cols] = matrixShape(masks[0]!.shape);
  const max = maxSize > 0 ? maxSize : Math.min(MAX_IMAGE_SIDE, Math.max(rows, cols));
  const grid: Grid = poolGrid(rows, cols, counts, max, max, 1 / masks.length);
  return { name, runs: masks.length, grid };
}

const runLabels = (r: Pick<LocalityResult, 'runs'>): string[] => r.runs.map((s, i) => `R${i + 1}: ${shortLabel(s)}`);

/** Jaccard matrix of one tensor, or of a pooled group ('all', 'layer L', 'layer L <kind>', '<kind>'). */
export function localityJaccardFigure(r: LocalityResult, what: { tensor?: string; layer?: number; kind?: string }): Figure {
  let g: { jaccard: number[][]; meanJaccard: number; meanBernoulli: number; meanMagnitudeMatched: number } | undefined;
  let label: string;
  if (what.tensor) {
    g = r.tensors.find((t) => t.name === what.tensor);
    label = what.tensor;
  } else if (what.layer !== undefined && what.kind) {
    g = r.byLayerKind.find((x) => x.layer === what.layer && x.kind === what.kind);
    label = `layer ${what.layer} ${kindLabel(what.kind as never)}`;
  } else if (what.layer !== undefined) {
    g = r.byLayer.find((x) => x.layer === what.layer);
    label = `layer ${what.layer} (all linear weights pooled)`;
  } else if (what.kind) {
    g = r.byKind.find((x) => x.kind === what.kind);
    label = `${kindLabel(what.kind as never)} (all layers pooled)`;
  } else {
    g = r.all;
    label = 'all tensors pooled';
  }
  if (!g) throw new RangeError(`no locality result for ${label}`);
  return jaccardFigure({
    what: label, runLabels: runLabels(r), matrix: g.jaccard,
    meanJaccard: g.meanJaccard, meanBernoulli: g.meanBernoulli, meanMagnitudeMatched: g.meanMagnitudeMatched,
    note: `${probeSentence(r.params.probe)} Runs: ${runLabels(r).join('; ')}.`,
  });
}

export function localityLayersFigure(r: LocalityResult): Figure {
  return localityBarsFigure({
    layers: r.byLayer.map((g) => g.layer!),
    jaccard: r.byLayer.map((g) => g.meanJaccard),
    bernoulli: r.byLayer.map((g) => g.meanBernoulli),
    magnitudeMatched: r.byLayer.map((g) => g.meanMagnitudeMatched),
    runs: r.runs.length,
    note: probeSentence(r.params.probe),
  });
}

export function changeRateFigureFor(cr: ChangeRateResult, group = 'all', probe?: ProbeOptions): Figure {
  const g = cr.groups.find((x) => x.group === group);
  if (!g) throw new RangeError(`no change-rate group ${group} (have: ${cr.groups.map((x) => x.group).join(', ')})`);
  return changeRateFigure({
    group: group === 'all' ? 'all analysed tensors' : `module ${kindLabel(group as never)}`,
    runs: cr.runs.map(shortLabel), rows: g.rows,
    note: probe ? probeSentence(probe) : undefined,
  });
}

export function ratioFigure(d: DynamicsResult, t: TensorDynamics, axis: 'row' | 'col'): Figure {
  const prof = axis === 'row' ? t.rowSmoothed : t.colSmoothed;
  if (!prof) throw new RangeError(`no profiles kept for ${t.name}`);
  const heads = (axis === 'row' && t.headAxis === 'rows') || (axis === 'col' && t.headAxis === 'cols') ? t.headBoundaries : [];
  const st = axis === 'row' ? t.rowStability : t.colStability;
  const last = st.vsFinal.length > 0 ? st.vsFinal[0] : null;
  return ratioCurvesFigure({
    tensor: t.name, axis, steps: d.steps, profiles: prof, headBoundaries: heads, headDim: d.heads?.headDim ?? null,
    note: `${probeSentence(d.params.probe)} Spearman of the raw profile, first vs final step: ${last === null || last === undefined ? 'n/a' : last.toFixed(3)}.`,
  });
}

export function sparsityStepsFigureFor(d: DynamicsResult): Figure {
  return sparsityStepsFigure({
    steps: d.steps,
    series: d.sparsityByKind.map((s) => ({ label: s.kind === 'all' ? 'all' : kindLabel(s.kind), sparsity: s.sparsity })),
    note: `Checkpoints: ${d.checkpoints.map(shortLabel).join(', ')}.`,
  });
}

/** A file-name-safe form of a tensor name. */
export function slug(name: string): string {
  return name.replace(/^model\./, '').replace(/\.weight$/, '').replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** Sparsity per decoder layer × module kind (2-D linear weights), from a sparsity document; mean over runs unless one is chosen. */
export function sparsityGridFromDoc(doc: Pick<SparsityDoc, 'tensors' | 'summary'>, run?: number): SparsityGridData {
  const cells = new Map<string, { n: number; unchanged: number }>();
  const layers = new Set<number>();
  const kinds = new Set<ModuleKind>();
  for (const t of doc.tensors) {
    if (t.layer === null || !t.linear) continue;
    t.results.forEach((r, i) => {
      if (!r || (run !== undefined && i !== run)) return;
      const key = `${t.layer}:${t.kind}`;
      const c = cells.get(key) ?? { n: 0, unchanged: 0 };
      c.n += t.numel; c.unchanged += r.unchanged;
      cells.set(key, c);
      layers.add(t.layer!); kinds.add(t.kind);
    });
  }
  const ls = [...layers].sort((a, b) => a - b);
  const ks = KIND_ORDER.filter((k) => kinds.has(k));
  const runNote = run === undefined ? `Pooled over ${doc.summary.length} run(s)` : `Run ${run}: ${shortLabel(doc.summary[run]?.spec ?? '')}`;
  return {
    layers: ls, kinds: ks.map((k) => kindLabel(k)),
    sparsity: ls.map((l) => ks.map((k) => { const c = cells.get(`${l}:${k}`); return c && c.n > 0 ? c.unchanged / c.n : null; })),
    note: runNote + '.',
  };
}

/**
 * Writes the locality figures (PNG + CSV each) into `dir`: Jaccard matrices of the chosen
 * layer's modules and of all tensors pooled, Jaccard vs baselines per layer, change rate vs
 * binade, the kept consensus maps, and (when the pass produced one) sparsity per layer × module.
 */
export function writeLocalityFigures(dir: string, r: LocalityResult, layer: number | null): string[] {
  ensureDir(dir);
  const out: string[] = [];
  const w = (f: Figure, name: string): void => { out.push(...writeFigure(f, path.join(dir, `${name}.png`))); };
  w(localityJaccardFigure(r, {}), 'jaccard-all');
  if (layer !== null) {
    for (const g of r.byLayerKind.filter((x) => x.layer === layer)) w(localityJaccardFigure(r, { layer, kind: g.kind }), `jaccard-layer${layer}-${g.kind}`);
  }
  if (r.byLayer.length > 0) w(localityLayersFigure(r), 'jaccard-layers');
  if (r.changeRate.groups.length > 0) w(changeRateFigureFor(r.changeRate, 'all', r.params.probe), 'changerate');
  for (const c of r.consensus) w(consensusFigure(c, r.params.probe), `consensus-${slug(c.name)}`);
  if (r.sparsity) {
    const grid = sparsityGridFromDoc(r.sparsity);
    if (grid.layers.length > 0) w(sparsityGridFigure(grid), 'sparsity-layers');
  }
  return out;
}

/** Writes the dynamics figures: row and column ratio curves of every tensor with kept profiles, and sparsity over steps. */
export function writeDynamicsFigures(dir: string, d: DynamicsResult): string[] {
  ensureDir(dir);
  const out: string[] = [];
  const w = (f: Figure, name: string): void => { out.push(...writeFigure(f, path.join(dir, `${name}.png`))); };
  w(sparsityStepsFigureFor(d), 'sparsity-steps');
  for (const t of d.tensors) {
    if (!t.rowSmoothed || t.shape.length !== 2) continue;
    w(ratioFigure(d, t, 'row'), `ratios-row-${slug(t.name)}`);
    w(ratioFigure(d, t, 'col'), `ratios-col-${slug(t.name)}`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Adapters from the spectral / principal probe documents (src/run/geometry.ts)
// ---------------------------------------------------------------------------------------

/** Paper Fig. 5 data from a principal document: per-layer overlap of one reference mask, one run. */
export function overlapDataFromPrincipal(doc: PrincipalDoc, run = 0, mask: ReferenceMask = 'principal'): OverlapByLayerData {
  const s = doc.summary[run];
  if (!s) throw new RangeError(`run ${run}: the principal document has ${doc.summary.length} run(s)`);
  const p = doc.params;
  const names: Record<ReferenceMask, string> = {
    principal: `principal (top ${p.alpha * 100}% of |rank-${p.k} reconstruction|)`,
    low: `low-magnitude (bottom ${p.alpha * 100}% of |W0|)`,
    principalNotLow: `principal ∧ ¬low (α = ${p.alpha}, k = ${p.k})`,
  };
  const layers = [...s.byLayer].sort((a, b) => a.layer - b.layer);
  const num = (v: number | null): number => (v === null ? NaN : v);
  return {
    maskName: names[mask],
    layers: layers.map((l) => l.layer),
    observed: layers.map((l) => num(l.masks[mask].overlap)),
    random: layers.map((l) => num(l.masks[mask].random)),
    magnitudeMatched: layers.map((l) => num(l.masks[mask].magnitudeMatched)),
    note: `Run ${run}: ${shortLabel(s.spec)}.`,
  };
}

/** Paper Fig. 4 left from a spectrum document: chosen tensors (default: the middle layer's), one run. */
export function spectrumDataFromDoc(doc: SpectrumDoc, run = 0, select?: (name: string) => boolean, subspace: 'left' | 'right' = 'left'): SpectrumCurvesData {
  let ts = doc.tensors.filter((t) => t.results[run]);
  if (select) ts = ts.filter((t) => select(t.name));
  else {
    const layers = [...new Set(ts.map((t) => t.layer).filter((l): l is number => l !== null))].sort((a, b) => a - b);
    const mid = layers[Math.floor((layers.length - 1) / 2)];
    ts = ts.filter((t) => t.layer === mid);
  }
  if (ts.length === 0) throw new RangeError('no tensor of the spectrum document matches');
  return {
    k: doc.params.k, subspace,
    tensors: ts.map((t) => {
      const r = t.results[run]!;
      return {
        label: t.layer === null ? t.name : `L${t.layer} ${kindLabel(t.kind)}`,
        baseSingularValues: t.base.singularValues, tunedSingularValues: r.singularValues,
        principalAngles: subspace === 'left' ? r.anglesU : r.anglesV,
      };
    }),
    note: `Run ${run}: ${shortLabel(doc.summary[run]?.spec ?? '')}.`,
  };
}

/** Paper Fig. 4 right from a spectrum document: max angle and NSS per layer, one line per module kind. */
export function layerSpectralFromDoc(doc: SpectrumDoc, run = 0): LayerSpectralData {
  const layers = [...new Set(doc.tensors.map((t) => t.layer).filter((l): l is number => l !== null))].sort((a, b) => a - b);
  const kinds = KIND_ORDER.filter((k) => doc.tensors.some((t) => t.kind === k && t.layer !== null));
  const at = (k: ModuleKind, l: number, f: 'maxAngle' | 'nss'): number => {
    const t = doc.tensors.find((x) => x.kind === k && x.layer === l);
    const r = t?.results[run];
    return r ? r[f] : NaN;
  };
  return {
    k: doc.params.k, layers,
    series: kinds.map((k) => ({ label: kindLabel(k), maxAngle: layers.map((l) => at(k, l, 'maxAngle')), nss: layers.map((l) => at(k, l, 'nss')) })),
    note: `Run ${run}: ${shortLabel(doc.summary[run]?.spec ?? '')}.`,
  };
}

// ---------------------------------------------------------------------------------------
// Every figure of an analysis folder
// ---------------------------------------------------------------------------------------

/** JSON wrote NaN as null; figures treat non-numbers as missing. */
function nullsToNaN<T>(v: T): T {
  return JSON.parse(JSON.stringify(v), (_k, x: unknown) => (x === null ? NaN : x)) as T;
}

function readDoc(file: string, kind: string): Record<string, unknown> | null {
  if (!fs.existsSync(file)) return null;
  let v: unknown;
  try { v = JSON.parse(fs.readFileSync(file, 'utf8')); } catch (e) { throw new FormatError(file, 'E_JSON', `not valid JSON (${(e as Error).message.slice(0, 80)})`); }
  if (v === null || typeof v !== 'object' || (v as { kind?: unknown }).kind !== kind) throw new FormatError(file, 'E_KIND', `expected a ${kind} document`);
  return v as Record<string, unknown>;
}

/**
 * Renders every figure the documents of an analysis folder (`rlvr-lens analyze`, or the
 * --out folders of locality / dynamics / sparsity) support into `out`, PNG + CSV each:
 * locality (Jaccard matrices, per layer, change rate), dynamics (ratio curves, sparsity over
 * steps), sparsity (layer × module), principal (Fig. 5 for each reference mask), spectrum
 * (Fig. 4 left and right). Run 0 where a figure shows one run. Returns the files written.
 */
export function writeAnalysisFigures(dir: string, out: string): string[] {
  const written: string[] = [];
  const w = (f: Figure, name: string): void => { ensureDir(out); written.push(...writeFigure(f, path.join(out, `${name}.png`))); };
  const loc = readDoc(path.join(dir, 'locality.json'), 'locality');
  if (loc) {
    const r = nullsToNaN(loc) as unknown as LocalityResult & { tableLayer?: number | null };
    w(localityJaccardFigure(r, {}), 'jaccard-all');
    const layer = typeof r.tableLayer === 'number' ? r.tableLayer : null;
    if (layer !== null) for (const g of r.byLayerKind.filter((x) => x.layer === layer)) w(localityJaccardFigure(r, { layer, kind: g.kind }), `jaccard-layer${layer}-${g.kind}`);
    if (r.byLayer.length > 0) w(localityLayersFigure(r), 'jaccard-layers');
    if (r.changeRate.groups.length > 0) w(changeRateFigureFor(r.changeRate, 'all', r.params.probe), 'changerate');
  }
  const dyn = readDoc(path.join(dir, 'dynamics.json'), 'dynamics');
  if (dyn) {
    const d = nullsToNaN(dyn) as unknown as DynamicsResult;
    w(sparsityStepsFigureFor(d), 'sparsity-steps');
    for (const t of d.tensors) {
      if (!t.rowSmoothed || t.shape.length !== 2) continue;
      w(ratioFigure(d, t, 'row'), `ratios-row-${slug(t.name)}`);
      w(ratioFigure(d, t, 'col'), `ratios-col-${slug(t.name)}`);
    }
  }
  const sp = readDoc(path.join(dir, 'sparsity.json'), 'sparsity');
  if (sp) {
    const grid = sparsityGridFromDoc(sp as unknown as SparsityDoc);
    if (grid.layers.length > 0) w(sparsityGridFigure(grid), 'sparsity-layers');
  }
  const pr = readDoc(path.join(dir, 'principal.json'), 'principal');
  if (pr) for (const m of ['principal', 'low', 'principalNotLow'] as const) w(overlapFigure(overlapDataFromPrincipal(pr as unknown as PrincipalDoc, 0, m)), `overlap-${m}`);
  const spec = readDoc(path.join(dir, 'spectrum.json'), 'spectrum');
  if (spec) {
    const sd = nullsToNaN(spec) as unknown as SpectrumDoc;
    if (sd.tensors.some((t) => t.results[0])) {
      w(spectrumFigure(spectrumDataFromDoc(sd, 0)), 'spectrum');
      w(layerSpectralFigure(layerSpectralFromDoc(sd, 0)), 'layer-spectral');
    }
  }
  return written;
}
