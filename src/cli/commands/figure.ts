/**
 * `rlvr-lens figure <type>`: one figure (PNG + the data behind it as CSV) from checkpoints
 * or from the JSON written by the probes (or a plain data JSON for spectral figures).
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { FormatError, UsageError, fromSystemError } from '../../errors.js';
import { openCheckpoint } from '../../io/checkpoint.js';
import type { DynamicsResult } from '../../probes/dynamics.js';
import { type LocalityResult, consensusCounts, readUpdateMasksOnce } from '../../probes/locality.js';
import type { SparsityDoc } from '../../probes/sparsity.js';
import {
  type Figure, type LayerSpectralData, type OverlapByLayerData, type SparsityGridData, type SpectrumCurvesData,
  layerSpectralFigure, overlapFigure, shortLabel, sparsityGridFigure, spectrumFigure,
} from '../../report/figures/figures.js';
import {
  changeRateFigureFor, consensusFigure, consensusImageOf, layerSpectralFromDoc, localityJaccardFigure, localityLayersFigure, maskFigure,
  overlapDataFromPrincipal, ratioFigure, sparsityGridFromDoc, sparsityStepsFigureFor, spectrumDataFromDoc, writeAnalysisFigures,
} from '../../report/figures/probes.js';
import { parseTensorName } from '../../model/names.js';
import type { PrincipalDoc, SpectrumDoc } from '../../run/geometry.js';
import { writeFigure } from '../../report/figures/render.js';
import { addProbeOptions, intFlag, probeFromFlags } from '../options.js';

export const FIGURE_TYPES: Record<string, string> = {
  all: 'every figure an analysis folder supports: --from DIR (locality/dynamics/sparsity/principal/spectrum .json) --out OUTDIR',
  mask: 'update mask of one tensor: --base B --tuned T --tensor NAME [--pool n | --full]',
  consensus: 'consensus map of R runs: --base B --tuned T1 T2 ... --tensor NAME [--pool n | --full]',
  jaccard: 'Jaccard matrix: --from locality.json [--tensor NAME | --layer L [--kind K] | --kind K] (default: all tensors pooled)',
  'jaccard-layers': 'Jaccard vs baselines per layer: --from locality.json',
  changerate: 'change rate per binade of |W0|: --from locality.json [--group all|q|k|v|o|gate|up|down]',
  ratios: 'row/column update ratios over steps: --from dynamics.json --tensor NAME [--axis row|col]',
  'sparsity-steps': 'sparsity over steps per module: --from dynamics.json',
  sparsity: 'sparsity per layer × module: --from sparsity.json (a sparsity document) [--run i] or a SparsityGridData JSON',
  overlap: 'overlap with a reference mask vs baselines per layer (paper Fig. 5): --from principal.json [--mask principal|low|principalNotLow] [--run i], or an OverlapByLayerData JSON',
  spectrum: 'singular values base vs tuned + principal angles (Fig. 4 left): --from spectrum.json [--tensor NAME | --layer L] [--axis row (left, U) | col (right, V)] [--run i], or a SpectrumCurvesData JSON',
  'layer-spectral': 'max principal angle and NSS across layers (Fig. 4 right): --from spectrum.json [--run i], or a LayerSpectralData JSON',
};

interface Opts {
  out: string;
  from?: string;
  base?: string;
  tuned?: string[];
  tensor?: string;
  layer?: string;
  kind?: string;
  axis: string;
  group: string;
  run?: string;
  mask: string;
  pool: string;
  full?: boolean;
  probe: string;
  eta: string;
  tol: string;
}

function readJson(file: string | undefined, type: string): Record<string, unknown> {
  if (!file) throw new UsageError(`figure ${type} needs --from <file.json>`);
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw fromSystemError(e, file, 'read'); }
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { throw new FormatError(file, 'E_JSON', `not valid JSON (${(e as Error).message.slice(0, 80)})`); }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new FormatError(file, 'E_JSON', 'expected a JSON object');
  return v as Record<string, unknown>;
}

function expectKind(doc: Record<string, unknown>, file: string, kind: string, needs: string[]): void {
  if (doc.kind !== undefined && doc.kind !== kind) throw new FormatError(file, 'E_KIND', `is a ${JSON.stringify(doc.kind)} document, expected ${kind}`);
  for (const k of needs) if (!(k in doc)) throw new FormatError(file, 'E_FIELD', `lacks the field ${JSON.stringify(k)} of a ${kind} document`);
}

/** JSON wrote NaN as null; the figure code treats non-numbers as missing. */
function nullsToNaN<T>(v: T): T {
  return JSON.parse(JSON.stringify(v), (_k, x: unknown) => (x === null ? NaN : x)) as T;
}

/** Runs an adapter; its range errors (no such run / tensor) become one-line usage errors. */
function guard<T>(file: string, fn: () => T): T {
  try { return fn(); } catch (e) { if (e instanceof RangeError) throw new UsageError(`${file}: ${e.message}`); throw e; }
}

function build(type: string, o: Opts): Figure {
  const pool = o.full ? 0 : intFlag('--pool', o.pool, 1)!;
  switch (type) {
    case 'mask':
    case 'consensus': {
      if (!o.base || !o.tuned || o.tuned.length === 0 || !o.tensor) throw new UsageError(`figure ${type} needs --base, --tuned and --tensor`);
      if (type === 'mask' && o.tuned.length !== 1) throw new UsageError('figure mask takes one --tuned checkpoint (use consensus for several)');
      const probe = probeFromFlags(o);
      const base = openCheckpoint(o.base);
      const tuned = o.tuned.map(openCheckpoint);
      try {
        if (!base.has(o.tensor)) throw new FormatError(o.base, 'E_MISSING_TENSOR', `no tensor named ${JSON.stringify(o.tensor)}`);
        const { masks } = readUpdateMasksOnce(base, tuned, o.tensor, probe);
        if (type === 'mask') return maskFigure(o.tensor, masks[0]!, pool, probe, shortLabel(tuned[0]!.spec));
        return consensusFigure(consensusImageOf(o.tensor, masks, consensusCounts(masks), pool), probe);
      } finally {
        base.close();
        tuned.forEach((t) => t.close());
      }
    }
    case 'jaccard':
    case 'jaccard-layers':
    case 'changerate': {
      const doc = readJson(o.from, type);
      expectKind(doc, o.from!, 'locality', ['tensors', 'byLayerKind', 'byKind', 'byLayer', 'all', 'changeRate', 'runs', 'params']);
      const r = nullsToNaN(doc) as unknown as LocalityResult;
      if (type === 'jaccard-layers') return localityLayersFigure(r);
      if (type === 'changerate') return changeRateFigureFor(r.changeRate, o.group, r.params.probe);
      const layer = intFlag('--layer', o.layer, 0);
      try {
        return localityJaccardFigure(r, { tensor: o.tensor, layer, kind: o.kind });
      } catch (e) {
        throw new UsageError(`${o.from}: ${(e as Error).message}`);
      }
    }
    case 'ratios':
    case 'sparsity-steps': {
      const doc = readJson(o.from, type);
      expectKind(doc, o.from!, 'dynamics', ['tensors', 'steps', 'sparsityByKind', 'params']);
      const d = nullsToNaN(doc) as unknown as DynamicsResult;
      if (type === 'sparsity-steps') return sparsityStepsFigureFor(d);
      if (!o.tensor) throw new UsageError('figure ratios needs --tensor');
      if (o.axis !== 'row' && o.axis !== 'col') throw new UsageError(`--axis must be row or col, got ${JSON.stringify(o.axis)}`);
      const t = d.tensors.find((x) => x.name === o.tensor);
      if (!t) throw new UsageError(`${o.from}: no tensor ${JSON.stringify(o.tensor)}`);
      if (!t.rowSmoothed) throw new UsageError(`${o.from}: no profiles kept for ${o.tensor} (rerun dynamics with --profiles or --layer covering it)`);
      return ratioFigure(d, t, o.axis);
    }
    case 'sparsity': {
      const doc = readJson(o.from, type);
      if (doc.kind === 'sparsity' || 'summary' in doc) {
        expectKind(doc, o.from!, 'sparsity', ['tensors', 'summary']);
        const sd = doc as unknown as SparsityDoc;
        const run = intFlag('--run', o.run, 0);
        if (run !== undefined && run >= sd.summary.length) throw new UsageError(`--run ${run}: the document has ${sd.summary.length} run(s) (0-based)`);
        return sparsityGridFigure(sparsityGridFromDoc(sd, run));
      }
      expectKind(doc, o.from!, 'sparsity', ['layers', 'kinds', 'sparsity']);
      return sparsityGridFigure(doc as unknown as SparsityGridData);
    }
    case 'overlap': {
      const doc = readJson(o.from, type);
      const run = intFlag('--run', o.run, 0) ?? 0;
      if (doc.kind === 'principal') {
        expectKind(doc, o.from!, 'principal', ['summary', 'params']);
        if (o.mask !== 'principal' && o.mask !== 'low' && o.mask !== 'principalNotLow') throw new UsageError(`--mask must be principal, low or principalNotLow, got ${JSON.stringify(o.mask)}`);
        return overlapFigure(guard(o.from!, () => overlapDataFromPrincipal(doc as unknown as PrincipalDoc, run, o.mask as 'principal')));
      }
      expectKind(doc, o.from!, doc.kind as string ?? 'overlap', ['maskName', 'layers', 'observed', 'random']);
      return overlapFigure(nullsToNaN(doc) as unknown as OverlapByLayerData);
    }
    case 'spectrum':
    case 'layer-spectral': {
      const doc = readJson(o.from, type);
      const run = intFlag('--run', o.run, 0) ?? 0;
      if (doc.kind === 'spectrum') {
        expectKind(doc, o.from!, 'spectrum', ['tensors', 'summary', 'params']);
        const sd = nullsToNaN(doc) as unknown as SpectrumDoc;
        if (type === 'layer-spectral') return layerSpectralFigure(guard(o.from!, () => layerSpectralFromDoc(sd, run)));
        const layer = intFlag('--layer', o.layer, 0);
        const select = o.tensor ? (n: string): boolean => n === o.tensor : layer !== undefined ? (n: string): boolean => parseTensorName(n).layer === layer : undefined;
        if (o.axis !== 'row' && o.axis !== 'col') throw new UsageError(`--axis must be row or col, got ${JSON.stringify(o.axis)}`);
        return spectrumFigure(guard(o.from!, () => spectrumDataFromDoc(sd, run, select, o.axis === 'row' ? 'left' : 'right')));
      }
      if (type === 'spectrum') {
        expectKind(doc, o.from!, doc.kind as string ?? 'spectrum', ['tensors', 'k', 'subspace']);
        return spectrumFigure(nullsToNaN(doc) as unknown as SpectrumCurvesData);
      }
      expectKind(doc, o.from!, doc.kind as string ?? 'layer-spectral', ['layers', 'series', 'k']);
      return layerSpectralFigure(nullsToNaN(doc) as unknown as LayerSpectralData);
    }
    default:
      throw new UsageError(`unknown figure type ${JSON.stringify(type)}; one of: ${Object.keys(FIGURE_TYPES).join(', ')}`);
  }
}

export function register(program: Command): void {
  addProbeOptions(program
    .command('figure')
    .description('Draw one figure as PNG (+ its data as CSV next to it). Types:\n' + Object.entries(FIGURE_TYPES).map(([k, v]) => `  ${k}: ${v}`).join('\n'))
    .argument('<type>', Object.keys(FIGURE_TYPES).join(' | '))
    .requiredOption('--out <file.png>', 'output PNG (the CSV goes next to it); for `all`, a folder')
    .option('--from <file.json>', 'probe output (locality.json, dynamics.json, sparsity.json) or a plain data JSON')
    .option('--base <checkpoint>', 'base checkpoint (mask, consensus)')
    .option('--tuned <checkpoints...>', 'tuned checkpoint(s) (mask: one; consensus: several)')
    .option('--tensor <name>', 'tensor name')
    .option('--layer <L>', 'layer (jaccard)')
    .option('--kind <k>', 'module kind: q, k, v, o, gate, up, down (jaccard)')
    .option('--axis <row|col>', 'ratios: row (ρ_i) or column (κ_j)', 'row')
    .option('--group <g>', 'changerate: all or a module kind', 'all')
    .option('--run <i>', 'which tuned run (0-based): sparsity (default: pooled), overlap, spectrum, layer-spectral (default 0)')
    .option('--mask <m>', 'overlap: reference mask principal, low or principalNotLow', 'principal')
    .option('--pool <n>', 'heatmaps: pool to at most n×n cells (mean over blocks)', '512')
    .option('--full', 'heatmaps: full resolution, one cell per entry (tensors over 8192 per side are still pooled; the caption says how)'), 'bf16 or abs (mask, consensus)')
    .action((type: string, o: Opts) => {
      if (type === 'all') {
        if (!o.from || !fs.existsSync(o.from) || !fs.statSync(o.from).isDirectory()) throw new UsageError('figure all needs --from <analysis folder>');
        const files = writeAnalysisFigures(o.from, o.out).filter((f) => f.endsWith('.png'));
        if (files.length === 0) throw new UsageError(`${o.from}: no locality, dynamics, sparsity, principal or spectrum document found`);
        process.stdout.write(`wrote ${files.length} figures (PNG + CSV) to ${o.out}\n`);
        return;
      }
      if (!/\.png$/i.test(o.out)) throw new UsageError(`--out must name a .png file, got ${JSON.stringify(o.out)}`);
      const fig = build(type, o);
      const files = writeFigure(fig, o.out);
      process.stdout.write(`wrote ${files.join(' and ')} (${fig.width}×${fig.height})\n`);
    });
}
