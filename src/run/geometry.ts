/**
 * The geometry pass: spectrum (SPEC §3), principal / low-magnitude overlap (SPEC §4) and
 * theory checks (SPEC §5) of one base against any number of tuned checkpoints, in ONE pass
 * over the base's 2-D linear weights (each base weight is read and decomposed once; its
 * decomposition comes from / goes to the on-disk cache, src/run/cache.ts).
 *
 * Per base weight W0 (natural name order; the selected layers/modules; this shard's share):
 *   1. top-k factors of W0 (cache hit, else `topKSVD`, or `exactSVD` for `--exact` tensors),
 *      σ_{k+1}(W0) from the Ritz basis (for δ_k);
 *   2. M_princ = Top_α(|W0^(k)|), M_low = Bottom_α(|W0|), 20 equal-count |W0| bins;
 *   3. per tuned W+: bit-identical → exact zeros without a solve; else `topKSVD` WARM-STARTED
 *      from W0's Ritz basis (a few iterations for W0 + small ΔW), principal angles U and V,
 *      NSS, ‖ΔW‖_F and ‖ΔW‖₂ (block power iteration), the update mask (`computeUpdateMask`,
 *      the sparsity rule) and its overlaps with M_princ, M_low, M_princ ∧ ¬M_low.
 * Memory: a few matrices of one tensor at a time, never the model.
 *
 * Outputs three documents (`envelope` kinds 'spectrum', 'principal', 'bounds'), tensor-major
 * like sparsity.json: `tensors[].results[i]` for tuned model i (null where it lacks the
 * tensor). Every aggregate (`summary`) is a pure function of the per-tensor records, so
 * `mergeGeometryShards` rebuilds exactly the document one run would have written. The
 * records are deterministic: cache hits return the stored fp64 bits, so cached and fresh
 * runs write identical bytes; cache activity is reported on the side (`GeometryRun.cache`).
 */
import { RlvrError, UsageError } from '../errors.js';
import { type TensorSource, openCheckpoint } from '../io/checkpoint.js';
import { parseLayerList } from '../interventions/intervene.js';
import {
  type Mat, type Mat64, type TopKSVD, exactSVD, frobeniusNorm, linalgBackend, spectralNorm, subtract, topKSVD,
} from '../linalg/index.js';
import { MODULE_KINDS, type ModuleKind, compareTensorNames, isLinearWeight, parseTensorName } from '../model/names.js';
import { theoryChecks, type TheoryChecks } from '../probes/bounds.js';
import { magnitudeBins } from '../probes/magnitude.js';
import { BitMask } from '../probes/mask.js';
import {
  type OverlapCounts, type OverlapRatios, countPerBin, effectiveK, lowMagnitudeMask, magnitudeBinSizes,
  overlapCounts, overlapRatios, rankKReconstruction, referenceBins, selectFraction,
} from '../probes/principal.js';
import { type InputRecord, describeInput } from '../probes/sparsity.js';
import { fullSpectrum, normalizedSpectralShift, principalAngleCurves } from '../probes/spectrum.js';
import { DEFAULT_PROBE, type ProbeOptions, computeUpdateMask } from '../probes/update.js';
import { type Table, envelope } from '../report/output.js';
import { type CacheKey, type CacheStats, type Decomposition, DecompositionCache, defaultCacheDir, sha256 } from './cache.js';
import { type ShardOutput, type ShardSpec, joinShardOutputs, selectShard } from './shard.js';
import { requireSharedTensors } from './pair.js';

// ---------------------------------------------------------------------------------------
// Parameters and documents
// ---------------------------------------------------------------------------------------

export interface SolverSettings {
  /**
   * topKSVD's method: 'auto' (default: fp64 Gram eigen-decomposition when min(rows, cols) ≤ 320,
   * else randomized subspace iteration), 'randomized' or 'gram'. The path each tensor took is
   * recorded in its `solve.method`.
   */
  method: 'auto' | 'randomized' | 'gram';
  oversample: number;
  tol: number;
  angleTol: number;
  maxIter: number;
  seed: number;
  warmStart: boolean;
  backend: string;
  threads: number;
}

export interface GeometryParams {
  k: number;
  alpha: number;
  numBins: number;
  fullSpectrum: boolean;
  /** Selected decoder layers (null: all). */
  layers: number[] | null;
  /** Selected module kinds (null: all linear kinds). */
  modules: string[] | null;
  /** Regex (source) of tensors decomposed exactly (dense fp64 Jacobi SVD); null: none. */
  exact: string | null;
  /** Update-mask rule (as `rlvr-lens sparsity`). */
  probe: ProbeOptions;
  solver: SolverSettings;
  /** ‖ΔW‖₂ solver (linalg `spectralNorm`) and its settings. */
  spectralNorm: { method: string; tol: number; maxIter: number; seed: number };
  shard: ShardSpec | null;
}

export interface SolveInfo { iterations: number; residual: number; angleErrorBound: number; converged: boolean; method: string }

export interface SpectrumResult {
  /** Bit-identical to the base tensor: all quantities are exactly 0, no solve. */
  identical: boolean;
  anglesU: number[];
  anglesV: number[];
  maxAngleU: number;
  maxAngleV: number;
  maxAngle: number;
  nss: number;
  /** NSS over all singular values (`--full-spectrum`), else null. */
  nssFull: number | null;
  singularValues: number[];
  fullSpectrum: number[] | null;
  solve: SolveInfo | null;
}

interface TensorHead { name: string; layer: number | null; kind: ModuleKind; shape: number[]; k: number }

export interface SpectrumTensor extends TensorHead {
  base: { singularValues: number[]; sigmaNext: number | null; fullSpectrum: number[] | null; solve: SolveInfo };
  results: (SpectrumResult | null)[];
}

export interface MaskOverlap {
  /** |M• ∩ M| (count). */
  overlap: number;
  /** Magnitude-matched expected |M• ∩ M| (count, real). */
  magnitudeMatched: number;
  /** Ratios of this tensor (null when nothing changed). */
  ratio: number | null;
  random: number | null;
  magnitudeMatchedRatio: number | null;
}

export const REFERENCE_MASKS = ['principal', 'low', 'principalNotLow'] as const;
export type ReferenceMask = (typeof REFERENCE_MASKS)[number];

export interface PrincipalResult {
  changed: number;
  nonFinite: number;
  masks: Record<ReferenceMask, MaskOverlap>;
}

export interface PrincipalTensor extends TensorHead {
  alpha: number;
  entries: number;
  /** |M_princ|, |M_low|, |M_princ ∧ ¬M_low|. */
  counts: Record<ReferenceMask, number>;
  results: (PrincipalResult | null)[];
}

export interface BoundsTensor extends TensorHead {
  sigmaK: number;
  sigmaNext: number | null;
  results: ((TheoryChecks & { identical: boolean }) | null)[];
}

/**
 * Tensors left out for tuned model `tuned`: absent there, another shape, or NaN/Inf entries in
 * the base or the tuned weight (the spectral probes need finite matrices; the sparsity stage
 * counts NaN/Inf per tensor).
 */
export interface SkipRecord { tuned: number; missing: string[]; shapeMismatch: string[]; nonFinite: string[] }

interface Common { params: GeometryParams; inputs: { base: InputRecord; tuned: InputRecord[] }; skipped: SkipRecord[] }

export interface SpectrumSummary {
  tuned: number; spec: string; tensors: number; notConverged: number;
  all: AngleAggregate; byKind: ({ kind: ModuleKind } & AngleAggregate)[]; byLayer: ({ layer: number } & AngleAggregate)[];
}
export interface AngleAggregate { tensors: number; maxAngle: number; meanMaxAngle: number; maxNss: number; meanNss: number }

export interface PrincipalGroup { tensors: number; entries: number; changed: number; masks: Record<ReferenceMask, OverlapRatios> }
export interface PrincipalSummary {
  tuned: number; spec: string; all: PrincipalGroup;
  byKind: ({ kind: ModuleKind } & PrincipalGroup)[]; byLayer: ({ layer: number } & PrincipalGroup)[];
}

export const BOUND_CHECKS = ['wedin', 'weyl', 'hoffmanWielandt', 'kyFan'] as const;
export interface BoundsSummary {
  tuned: number; spec: string; tensors: number;
  checks: Record<(typeof BOUND_CHECKS)[number], { evaluated: number; violated: number; maxRatio: number | null; violations: string[] }>;
}

export type SpectrumDoc = ReturnType<typeof envelope<Common & { summary: SpectrumSummary[]; tensors: SpectrumTensor[] }>>;
export type PrincipalDoc = ReturnType<typeof envelope<Common & { summary: PrincipalSummary[]; tensors: PrincipalTensor[] }>>;
export type BoundsDoc = ReturnType<typeof envelope<Common & { summary: BoundsSummary[]; tensors: BoundsTensor[] }>>;
export type GeometryDoc = SpectrumDoc | PrincipalDoc | BoundsDoc;
export type GeometryKind = 'spectrum' | 'principal' | 'bounds';

// ---------------------------------------------------------------------------------------
// Aggregation (pure functions of per-tensor records)
// ---------------------------------------------------------------------------------------

function groupBy<T extends { kind: ModuleKind; layer: number | null }, G>(
  items: readonly T[], agg: (xs: T[]) => G,
): { byKind: ({ kind: ModuleKind } & G)[]; byLayer: ({ layer: number } & G)[] } {
  const byKind = MODULE_KINDS.map((kind) => ({ kind, xs: items.filter((x) => x.kind === kind) })).filter((g) => g.xs.length > 0)
    .map((g) => ({ kind: g.kind, ...agg(g.xs) }));
  const layers = [...new Set(items.map((x) => x.layer).filter((l): l is number => l !== null))].sort((a, b) => a - b);
  const byLayer = layers.map((layer) => ({ layer, ...agg(items.filter((x) => x.layer === layer)) }));
  return { byKind, byLayer };
}

function specsOf(c: Common): string[] { return c.inputs.tuned.map((t) => t.spec); }

export function summarizeSpectrum(c: Common, tensors: readonly SpectrumTensor[]): SpectrumSummary[] {
  return specsOf(c).map((spec, ti) => {
    const rows = tensors.flatMap((t) => (t.results[ti] ? [{ kind: t.kind, layer: t.layer, r: t.results[ti]! }] : []));
    const agg = (xs: typeof rows): AngleAggregate => {
      let mx = 0, sm = 0, mn = 0, sn = 0;
      for (const x of xs) { mx = Math.max(mx, x.r.maxAngle); sm += x.r.maxAngle; mn = Math.max(mn, x.r.nss); sn += x.r.nss; }
      return { tensors: xs.length, maxAngle: mx, meanMaxAngle: xs.length ? sm / xs.length : 0, maxNss: mn, meanNss: xs.length ? sn / xs.length : 0 };
    };
    const notConverged = rows.filter((x) => x.r.solve !== null && !x.r.solve.converged).length
      + tensors.filter((t) => t.results[ti] && !t.base.solve.converged).length;
    return { tuned: ti, spec, tensors: rows.length, notConverged, all: agg(rows), ...groupBy(rows, agg) };
  });
}

export function summarizePrincipal(c: Common, tensors: readonly PrincipalTensor[]): PrincipalSummary[] {
  return specsOf(c).map((spec, ti) => {
    const rows = tensors.flatMap((t) => (t.results[ti] ? [{ kind: t.kind, layer: t.layer, t, r: t.results[ti]! }] : []));
    const agg = (xs: typeof rows): PrincipalGroup => {
      const masks = {} as Record<ReferenceMask, OverlapRatios>;
      for (const m of REFERENCE_MASKS) {
        masks[m] = overlapRatios(xs.map((x): OverlapCounts => ({
          entries: x.t.entries, reference: x.t.counts[m], changed: x.r.changed,
          overlap: x.r.masks[m].overlap, magnitudeMatched: x.r.masks[m].magnitudeMatched,
        })));
      }
      return { tensors: xs.length, entries: xs.reduce((a, x) => a + x.t.entries, 0), changed: xs.reduce((a, x) => a + x.r.changed, 0), masks };
    };
    return { tuned: ti, spec, all: agg(rows), ...groupBy(rows, agg) };
  });
}

export function summarizeBounds(c: Common, tensors: readonly BoundsTensor[]): BoundsSummary[] {
  return specsOf(c).map((spec, ti) => {
    const rows = tensors.flatMap((t) => (t.results[ti] ? [{ name: t.name, r: t.results[ti]! }] : []));
    const checks = {} as BoundsSummary['checks'];
    for (const ch of BOUND_CHECKS) {
      let evaluated = 0, maxRatio: number | null = null;
      const violations: string[] = [];
      for (const x of rows) {
        const b = x.r[ch];
        if (b.bound === null) continue;
        evaluated++;
        if (b.ratio !== null) maxRatio = maxRatio === null ? b.ratio : Math.max(maxRatio, b.ratio);
        if (!b.holds) violations.push(x.name);
      }
      checks[ch] = { evaluated, violated: violations.length, maxRatio, violations };
    }
    return { tuned: ti, spec, tensors: rows.length, checks };
  });
}

function sortTensors<T extends { name: string }>(ts: readonly T[]): T[] {
  return [...ts].sort((a, b) => compareTensorNames(a.name, b.name));
}

export function buildSpectrumDoc(c: Common, tensors: readonly SpectrumTensor[]): SpectrumDoc {
  const ts = sortTensors(tensors);
  return envelope('spectrum', { params: c.params, inputs: c.inputs, skipped: c.skipped, summary: summarizeSpectrum(c, ts), tensors: ts });
}
export function buildPrincipalDoc(c: Common, tensors: readonly PrincipalTensor[]): PrincipalDoc {
  const ts = sortTensors(tensors);
  return envelope('principal', { params: c.params, inputs: c.inputs, skipped: c.skipped, summary: summarizePrincipal(c, ts), tensors: ts });
}
export function buildBoundsDoc(c: Common, tensors: readonly BoundsTensor[]): BoundsDoc {
  const ts = sortTensors(tensors);
  return envelope('bounds', { params: c.params, inputs: c.inputs, skipped: c.skipped, summary: summarizeBounds(c, ts), tensors: ts });
}


/**
 * Joins `--shard i/N` documents of one kind into the document a single run would have
 * written (byte-identical through `toJson`). Every shard must be present exactly once, with
 * the same parameters, inputs and skip lists.
 */
export function mergeGeometryShards<D extends GeometryDoc>(docs: readonly D[], sources?: readonly string[]): D {
  const label = (i: number): string => sources?.[i] ?? `document ${i + 1}`;
  if (docs.length === 0) throw new UsageError('nothing to merge');
  const first = docs[0]!;
  const kind = first.kind;
  if (kind !== 'spectrum' && kind !== 'principal' && kind !== 'bounds') throw new RlvrError(`not a geometry document (kind ${String(kind)})`, { file: label(0), code: 'E_MERGE_KIND' });
  const tensors: unknown[] = joinShardOutputs(docs as unknown as readonly ShardOutput<{ name: string }>[], kind, label);
  // Skip lists are per shard (its own tensors): the union in name order is one run's list.
  const skipped: SkipRecord[] = first.skipped.map((s, ti) => ({
    tuned: ti,
    missing: docs.flatMap((d) => d.skipped[ti]?.missing ?? []).sort(compareTensorNames),
    shapeMismatch: docs.flatMap((d) => d.skipped[ti]?.shapeMismatch ?? []).sort(compareTensorNames),
    nonFinite: docs.flatMap((d) => d.skipped[ti]?.nonFinite ?? []).sort(compareTensorNames),
  }));
  const c: Common = { params: { ...first.params, shard: null }, inputs: first.inputs, skipped };
  if (kind === 'spectrum') return buildSpectrumDoc(c, tensors as SpectrumTensor[]) as D;
  if (kind === 'principal') return buildPrincipalDoc(c, tensors as PrincipalTensor[]) as D;
  return buildBoundsDoc(c, tensors as BoundsTensor[]) as D;
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

export interface GeometryOptions {
  /** Rank of the subspaces / reconstruction (default 64, capped at each matrix's rank). */
  k?: number;
  /** Fraction of M_princ and M_low (default 0.5). */
  alpha?: number;
  numBins?: number;
  /** Decoder layers: list spec ("0-3,7", "all") or indices. */
  layers?: string | readonly number[];
  modules?: readonly ModuleKind[];
  /** GEMM threads of the solver (default 1). */
  threads?: number;
  /** Cache folder; null disables the cache (--no-cache); undefined: `defaultCacheDir()`. */
  cacheDir?: string | null;
  /** Tensors to decompose exactly (dense fp64): a regex over names, or true for all. */
  exact?: RegExp | boolean;
  fullSpectrum?: boolean;
  shard?: ShardSpec | null;
  probe?: Partial<ProbeOptions>;
  seed?: number;
  /** topKSVD method (default 'auto', see SolverSettings). */
  method?: 'auto' | 'randomized' | 'gram';
  /** Solver settings (defaults: topKSVD's: oversample 16, tol 1e-6, angleTol 0.01°, maxIter 300). */
  oversample?: number;
  tol?: number;
  angleTol?: number;
  maxIter?: number;
  /** Which documents to compute (default all three); bounds need the spectrum. */
  want?: { spectrum?: boolean; principal?: boolean; bounds?: boolean };
  onTensor?: (name: string, done: number, total: number) => void;
  /**
   * Called after each SVD actually run (not for cache hits): `tuned` null for the base, else
   * the tuned model's index; `checkedAt` is topKSVD's Rayleigh–Ritz schedule (empty for the
   * Gram and exact paths). For benchmarks that replay the same work in a baseline.
   */
  onSolve?: (name: string, tuned: number | null, solve: SolveInfo & { checkedAt: readonly number[] }) => void;
}

export interface GeometryRun {
  spectrum: SpectrumDoc | null;
  principal: PrincipalDoc | null;
  bounds: BoundsDoc | null;
  cache: CacheStats & { dir: string | null };
}

/** Base 2-D linear weights selected by layers/modules, in natural order (before sharding). */
export function selectGeometryTensors(src: TensorSource, layers: number[] | null, modules: readonly string[] | null): string[] {
  return src.names.filter((n) => {
    const info = src.info(n);
    const p = parseTensorName(n);
    if (!isLinearWeight(p, info.shape)) return false;
    if (layers && (p.layer === null || !layers.includes(p.layer))) return false;
    if (modules && !modules.includes(p.kind)) return false;
    return true;
  }).sort(compareTensorNames);
}

export const DEFAULT_SOLVER: Readonly<SolverSettings> = {
  method: 'auto', oversample: 16, tol: 1e-6, angleTol: 0.01, maxIter: 300, seed: 0, warmStart: true, backend: 'ort', threads: 1,
};

const SPECTRAL_NORM = { method: 'golub-kahan-lanczos', tol: 1e-6, maxIter: 300, seed: 0 };

function solveInfo(r: TopKSVD | null): SolveInfo {
  if (!r) return { iterations: 0, residual: 0, angleErrorBound: 0, converged: true, method: 'exact-jacobi-fp64' };
  return { iterations: r.iterations, residual: r.residual, angleErrorBound: r.angleErrorBound, converged: r.converged, method: r.method };
}

function firstCols(a: Mat64, k: number): Mat64 {
  if (a.cols === k) return a;
  const out = new Float64Array(a.rows * k);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < k; j++) out[i * k + j] = a.data[i * a.cols + j]!;
  return { rows: a.rows, cols: k, data: out };
}

/** ‖A x‖ for column c of a basis X on A's short side (tall: X spans right vectors). */
function ritzValue(A: Mat, X: Mat64, c: number, tall: boolean): number {
  const m = A.rows, n = A.cols, d = A.data;
  if (tall) {
    let s = 0;
    for (let i = 0; i < m; i++) {
      let acc = 0;
      const o = i * n;
      for (let j = 0; j < n; j++) acc += d[o + j]! * X.data[j * X.cols + c]!;
      s += acc * acc;
    }
    return Math.sqrt(s);
  }
  const y = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    const x = X.data[i * X.cols + c]!;
    if (x === 0) continue;
    const o = i * n;
    for (let j = 0; j < n; j++) y[j] = y[j]! + d[o + j]! * x;
  }
  let s = 0;
  for (let j = 0; j < n; j++) s += y[j]! * y[j]!;
  return Math.sqrt(s);
}

/**
 * The cache key of a base weight's top-k decomposition, as the geometry pass writes it (other
 * readers, e.g. `rlvr-lens masks`, use this to find the same entry): content hash of the raw
 * bytes, name, dtype, shape, k, method and every solver setting that changes the factors.
 */
export function baseDecompositionKey(
  name: string, rawBytes: Uint8Array, dtype: string, shape: [number, number], k: number, exact: boolean, solver: SolverSettings,
): CacheKey {
  return {
    tensorSha256: sha256(rawBytes), name, dtype, shape, k,
    method: exact ? 'exact-jacobi-fp64' : `topKSVD/${solver.method}`,
    settings: exact ? {} : {
      oversample: solver.oversample, tol: solver.tol, angleTol: solver.angleTol, maxIter: solver.maxIter, seed: solver.seed,
      backend: solver.backend, threads: solver.threads,
    },
  };
}

export interface Solved { U: Mat64; S: Float64Array; V: Mat64; basis: Decomposition['basis']; sigmaNext: number | null; info: SolveInfo; checkedAt?: number[] }

/** Top-k factors of W as the geometry pass computes them (exact, or randomized with an optional warm-start basis). */
export async function decomposeWeight(W: Mat, k: number, exact: boolean, s: SolverSettings, warm: Decomposition['basis']): Promise<Solved> {
  const r = Math.min(W.rows, W.cols);
  if (exact) {
    const f = exactSVD(W);
    return { U: firstCols(f.U, k), S: f.S.slice(0, k), V: firstCols(f.V, k), basis: null, sigmaNext: k < r ? f.S[k]! : null, info: solveInfo(null) };
  }
  const res = await topKSVD(W, k, {
    oversample: s.oversample, tol: s.tol, angleTol: s.angleTol, maxIter: s.maxIter, seed: s.seed, threads: s.threads, method: s.method,
    ...(warm ? { warmStart: warm.side === 'U' ? { U: warm.M } : { V: warm.M } } : {}),
  });
  const tall = W.rows >= W.cols;
  const M = tall ? res.warmStartBasis.V : res.warmStartBasis.U;
  const basis = M ? { side: (tall ? 'V' : 'U') as 'U' | 'V', M } : null;
  const sigmaNext = k < r && M && M.cols > k ? ritzValue(W, M, k, tall) : null;
  return { U: res.U, S: res.S, V: res.V, basis, sigmaNext, info: solveInfo(res), checkedAt: res.checkedAt };
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return false;
  return true;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function toMat(src: TensorSource, name: string): Mat {
  const [rows, cols] = src.info(name).shape as [number, number];
  return { rows, cols, data: src.readFloat32(name) };
}

function maskOverlap(c: OverlapCounts): MaskOverlap {
  const r = overlapRatios([c]);
  return { overlap: c.overlap, magnitudeMatched: c.magnitudeMatched, ratio: r.overlap, random: r.random, magnitudeMatchedRatio: r.magnitudeMatched };
}

/** See the module header. Throws RlvrError on bad input. */
export async function runGeometry(baseSpec: string, tunedSpecs: readonly string[], o: GeometryOptions = {}): Promise<GeometryRun> {
  if (tunedSpecs.length === 0) throw new UsageError('--tuned: at least one tuned checkpoint is needed');
  const kWanted = o.k ?? 64;
  if (!Number.isInteger(kWanted) || kWanted < 1) throw new UsageError(`-k must be a positive integer, got ${kWanted}`);
  const alpha = o.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha must be in [0, 1], got ${alpha}`);
  const numBins = o.numBins ?? 20;
  const threads = o.threads ?? 1;
  const want = { spectrum: o.want?.spectrum ?? true, principal: o.want?.principal ?? true, bounds: o.want?.bounds ?? true };
  const probe: ProbeOptions = { ...DEFAULT_PROBE, ...(o.probe ?? {}) };
  const base = openCheckpoint(baseSpec);
  const tuned: TensorSource[] = [];
  try {
    for (const t of tunedSpecs) tuned.push(openCheckpoint(t));
    let layers: number[] | null = null;
    if (o.layers !== undefined) {
      if (typeof o.layers === 'string') {
        const nl = base.config?.numLayers;
        if (nl === undefined) throw new UsageError(`${baseSpec}: --layers needs num_hidden_layers in config.json`);
        layers = parseLayerList(o.layers, nl, '--layers');
      } else layers = [...o.layers].sort((a, b) => a - b);
    }
    const modules = o.modules ? [...o.modules] : null;
    const exactRe = o.exact === true ? /.*/ : o.exact instanceof RegExp ? o.exact : null;
    const solver: SolverSettings = {
      method: o.method ?? 'auto', oversample: o.oversample ?? 16, tol: o.tol ?? 1e-6,
      angleTol: o.angleTol ?? 0.01, maxIter: o.maxIter ?? 300, seed: o.seed ?? 0, warmStart: true,
      backend: await linalgBackend(), threads,
    };
    const params: GeometryParams = {
      k: kWanted, alpha, numBins, fullSpectrum: !!o.fullSpectrum, layers, modules, exact: exactRe ? exactRe.source : null,
      probe, solver, spectralNorm: SPECTRAL_NORM, shard: o.shard ?? null,
    };
    const all = selectGeometryTensors(base, layers, modules);
    if (all.length === 0) throw new UsageError(`${baseSpec}: no 2-D linear weights${layers || modules ? ' in the chosen layers/modules' : ''}`);
    for (const t of tuned) requireSharedTensors(base, t, all);
    const mine = selectShard(all.map((name) => ({ name, bytes: base.info(name).byteLength })), params.shard).map((x) => x.name);
    const skipped: SkipRecord[] = tuned.map((_, ti) => ({ tuned: ti, missing: [], shapeMismatch: [], nonFinite: [] }));
    const common: Common = { params, inputs: { base: describeInput(base), tuned: tuned.map(describeInput) }, skipped };
    const cacheDir = o.cacheDir === undefined ? defaultCacheDir() : o.cacheDir;
    const cache = new DecompositionCache(cacheDir);

    const specT: SpectrumTensor[] = [], princT: PrincipalTensor[] = [], boundT: BoundsTensor[] = [];
    let done = 0;
    for (const name of mine) {
      const info = base.info(name);
      const p = parseTensorName(name);
      const [rows, cols] = info.shape as [number, number];
      const k = effectiveK(kWanted, rows, cols);
      const exact = !!exactRe && exactRe.test(name);
      const head: TensorHead = { name, layer: p.layer, kind: p.kind, shape: [rows, cols], k };
      const baseBytes = base.readBytes(name);
      const W0 = toMat(base, name);
      if (!allFinite(W0.data)) { for (const sk of skipped) sk.nonFinite.push(name); done++; o.onTensor?.(name, done, mine.length); continue; }
      // 1. base decomposition (cache)
      const needSvd = want.spectrum || want.bounds || want.principal;
      let dec: Decomposition | null = null;
      if (needSvd) {
        const key = baseDecompositionKey(name, baseBytes, info.dtype, [rows, cols], k, exact, solver);
        dec = cache.get(key);
        if (!dec) {
          const s = await decomposeWeight(W0, k, exact, solver, null);
          o.onSolve?.(name, null, { ...s.info, checkedAt: s.checkedAt ?? [] });
          dec = { U: s.U, S: s.S, V: s.V, basis: s.basis, sigmaNext: s.sigmaNext, info: s.info };
          cache.put(key, dec);
        }
      }
      const d0 = dec!;
      const full0 = want.spectrum && o.fullSpectrum ? await fullSpectrum(W0, threads) : null;
      // 2. reference masks
      let refs: { masks: Record<ReferenceMask, BitMask>; bins: Uint8Array; sizes: Float64Array } | null = null;
      if (want.principal) {
        const scores = await rankKReconstruction(W0, k, { svd: d0, threads });
        const princ = selectFraction(scores, alpha, 'top', [rows, cols]);
        const low = lowMagnitudeMask(W0, alpha);
        const bins = magnitudeBins(baseBytes, info.dtype, numBins);
        refs = { masks: { principal: princ, low, principalNotLow: princ.and(low.not()) }, bins, sizes: magnitudeBinSizes(bins, numBins) };
      }
      const refBins = refs ? Object.fromEntries(REFERENCE_MASKS.map((m) => [m, referenceBins(refs!.masks[m], refs!.bins, refs!.sizes)])) as Record<ReferenceMask, ReturnType<typeof referenceBins>> : null;

      const sRes: (SpectrumResult | null)[] = [], pRes: (PrincipalResult | null)[] = [], bRes: ((TheoryChecks & { identical: boolean }) | null)[] = [];
      for (let ti = 0; ti < tuned.length; ti++) {
        const t = tuned[ti]!;
        if (!t.has(name)) { skipped[ti]!.missing.push(name); sRes.push(null); pRes.push(null); bRes.push(null); continue; }
        const tinfo = t.info(name);
        if (tinfo.shape.length !== 2 || tinfo.shape[0] !== rows || tinfo.shape[1] !== cols) {
          skipped[ti]!.shapeMismatch.push(name); sRes.push(null); pRes.push(null); bRes.push(null); continue;
        }
        const identical = tinfo.dtype === info.dtype && bytesEqual(baseBytes, t.readBytes(name));
        let d1: Solved | null = null;
        const W1: Mat | null = identical ? null : toMat(t, name);
        if (W1 && !allFinite(W1.data)) {
          skipped[ti]!.nonFinite.push(name); sRes.push(null); pRes.push(null); bRes.push(null); continue;
        }
        if (W1 && (want.spectrum || want.bounds)) {
          d1 = await decomposeWeight(W1, k, exact, solver, d0.basis);
          o.onSolve?.(name, ti, { ...d1.info, checkedAt: d1.checkedAt ?? [] });
        }
        const S0 = Array.from(d0.S);
        if (want.spectrum || want.bounds) {
          const curves = identical ? null : await principalAngleCurves(d0, d1!, threads);
          const zeros = new Array<number>(k).fill(0);
          const full1 = o.fullSpectrum && want.spectrum ? (identical ? full0 : await fullSpectrum(W1!, threads)) : null;
          const r: SpectrumResult = {
            identical,
            anglesU: curves ? Array.from(curves.u) : zeros, anglesV: curves ? Array.from(curves.v) : zeros,
            maxAngleU: curves?.maxU ?? 0, maxAngleV: curves?.maxV ?? 0, maxAngle: curves?.max ?? 0,
            nss: identical ? 0 : normalizedSpectralShift(d0.S, d1!.S),
            nssFull: full0 && full1 ? normalizedSpectralShift(full0, full1) : null,
            singularValues: identical ? S0 : Array.from(d1!.S),
            fullSpectrum: full1 ? Array.from(full1) : null,
            solve: identical ? null : d1!.info,
          };
          sRes.push(r);
          if (want.bounds) {
            let dF = 0, d2 = 0;
            if (!identical) {
              const dW = subtract(W1!, W0);
              dF = frobeniusNorm(dW);
              d2 = (await spectralNorm(dW, { tol: SPECTRAL_NORM.tol, maxIter: SPECTRAL_NORM.maxIter, seed: SPECTRAL_NORM.seed, threads })).norm;
            }
            const sigmaSlack = identical ? 0 : (d0.info.residual + d1!.info.residual) * (d0.S[0] ?? 0);
            const checks = theoryChecks({
              s0: d0.S, s1: identical ? d0.S : d1!.S, sigmaNext0: d0.sigmaNext, maxAngleDeg: r.maxAngle,
              deltaFrobenius: dF, deltaSpectral: d2, sigmaSlack, angleSlackDeg: identical ? 0 : d0.info.angleErrorBound + d1!.info.angleErrorBound,
            });
            bRes.push({ identical, ...checks });
          } else bRes.push(null);
        } else { sRes.push(null); bRes.push(null); }
        if (refs && refBins) {
          const stats = { nonFinite: 0 };
          const M = identical ? new BitMask([rows, cols]) : computeUpdateMask(base, t, name, probe, stats);
          const changedPerBin = countPerBin(M, refs.bins, numBins);
          const masks = {} as Record<ReferenceMask, MaskOverlap>;
          let changed = 0;
          for (const m of REFERENCE_MASKS) {
            const c = overlapCounts(refs.masks[m], refBins[m], M, changedPerBin);
            changed = c.changed;
            masks[m] = maskOverlap(c);
          }
          pRes.push({ changed, nonFinite: stats.nonFinite, masks });
        } else pRes.push(null);
      }
      if (want.spectrum) {
        specT.push({
          ...head,
          base: { singularValues: Array.from(d0.S), sigmaNext: d0.sigmaNext, fullSpectrum: full0 ? Array.from(full0) : null, solve: d0.info },
          results: sRes,
        });
      }
      if (refs) {
        const n = rows * cols;
        princT.push({
          ...head, alpha, entries: n,
          counts: { principal: refs.masks.principal.count(), low: refs.masks.low.count(), principalNotLow: refs.masks.principalNotLow.count() },
          results: pRes,
        });
      }
      if (want.bounds) boundT.push({ ...head, sigmaK: d0.S[k - 1] ?? 0, sigmaNext: d0.sigmaNext, results: bRes });
      done++;
      o.onTensor?.(name, done, mine.length);
    }
    return {
      spectrum: want.spectrum ? buildSpectrumDoc(common, specT) : null,
      principal: want.principal ? buildPrincipalDoc(common, princT) : null,
      bounds: want.bounds ? buildBoundsDoc(common, boundT) : null,
      cache: { ...cache.stats, dir: cache.dir },
    };
  } finally {
    base.close();
    for (const t of tuned) t.close();
  }
}

// ---------------------------------------------------------------------------------------
// Tables (CSV / Markdown / terminal)
// ---------------------------------------------------------------------------------------

const r4 = (x: number | null): number | null => (x === null || !Number.isFinite(x) ? null : x);

export function spectrumTables(doc: SpectrumDoc): Record<string, Table> {
  const summary: Table = { columns: ['tuned', 'tensors', 'max angle (deg)', 'mean max angle (deg)', 'max NSS', 'mean NSS', 'not converged'], rows: [] };
  const kinds: Table = { columns: ['tuned', 'kind', 'tensors', 'max angle (deg)', 'mean max angle (deg)', 'mean NSS'], rows: [] };
  const layers: Table = { columns: ['tuned', 'layer', 'tensors', 'max angle (deg)', 'mean max angle (deg)', 'mean NSS'], rows: [] };
  for (const s of doc.summary) {
    summary.rows.push([s.spec, s.tensors, s.all.maxAngle, s.all.meanMaxAngle, s.all.maxNss, s.all.meanNss, s.notConverged]);
    for (const g of s.byKind) kinds.rows.push([s.spec, g.kind, g.tensors, g.maxAngle, g.meanMaxAngle, g.meanNss]);
    for (const g of s.byLayer) layers.rows.push([s.spec, g.layer, g.tensors, g.maxAngle, g.meanMaxAngle, g.meanNss]);
  }
  const tensors: Table = { columns: ['tuned', 'tensor', 'k', 'max angle U', 'max angle V', 'NSS', 'NSS full', 'iterations', 'converged'], rows: [] };
  doc.tensors.forEach((t) => t.results.forEach((r, ti) => {
    if (r) tensors.rows.push([doc.inputs.tuned[ti]!.spec, t.name, t.k, r.maxAngleU, r.maxAngleV, r.nss, r4(r.nssFull), r.solve?.iterations ?? 0, r.solve?.converged ?? true]);
  }));
  return { '': summary, kinds, layers, tensors };
}

export function principalTables(doc: PrincipalDoc): Record<string, Table> {
  const cols = (lead: string[]): Table => ({
    columns: [...lead, 'changed', ...REFERENCE_MASKS.flatMap((m) => [`${m} overlap`, `${m} random`, `${m} magnitude-matched`])], rows: [],
  });
  const summary = cols(['tuned']), kinds = cols(['tuned', 'kind']), layers = cols(['tuned', 'layer']), tensors = cols(['tuned', 'tensor']);
  const cells = (g: PrincipalGroup): (number | null)[] => [g.changed, ...REFERENCE_MASKS.flatMap((m) => [g.masks[m].overlap, g.masks[m].random, g.masks[m].magnitudeMatched])];
  for (const s of doc.summary) {
    summary.rows.push([s.spec, ...cells(s.all)]);
    for (const g of s.byKind) kinds.rows.push([s.spec, g.kind, ...cells(g)]);
    for (const g of s.byLayer) layers.rows.push([s.spec, g.layer, ...cells(g)]);
  }
  doc.tensors.forEach((t) => t.results.forEach((r, ti) => {
    if (r) tensors.rows.push([doc.inputs.tuned[ti]!.spec, t.name, r.changed, ...REFERENCE_MASKS.flatMap((m) => [r.masks[m].ratio, r.masks[m].random, r.masks[m].magnitudeMatchedRatio])]);
  }));
  return { '': summary, kinds, layers, tensors };
}

export function boundsTables(doc: BoundsDoc): Record<string, Table> {
  const summary: Table = { columns: ['tuned', 'check', 'evaluated', 'violated', 'max measured/bound'], rows: [] };
  for (const s of doc.summary) for (const c of BOUND_CHECKS) summary.rows.push([s.spec, c, s.checks[c].evaluated, s.checks[c].violated, r4(s.checks[c].maxRatio)]);
  const tensors: Table = {
    columns: ['tuned', 'tensor', '‖ΔW‖_F', '‖ΔW‖₂', 'δ_k', ...BOUND_CHECKS.flatMap((c) => [`${c} measured`, `${c} bound`])], rows: [],
  };
  doc.tensors.forEach((t) => t.results.forEach((r, ti) => {
    if (r) tensors.rows.push([doc.inputs.tuned[ti]!.spec, t.name, r.deltaFrobenius, r.deltaSpectral, r4(r.gap), ...BOUND_CHECKS.flatMap((c) => [r[c].measured, r4(r[c].bound)])]);
  }));
  return { '': summary, tensors };
}
