/**
 * `rlvr-lens analyze`: every probe built so far over one base and several tuned checkpoints
 * (and optionally the checkpoints of one run over training time), into one folder:
 * `DIR/<stage>.json` (+ `.csv`/`.md` tables) per stage and `DIR/manifest.json`.
 *
 * STAGE INTERFACE (adding a stage is one line in STAGES):
 *
 *   interface AnalyzeStage {
 *     name: string;                         // file stem: writes DIR/<name>.json (+ tables)
 *     description: string;                  // one line, shown by `analyze --help`
 *     enabled?(ctx): string | null;         // null = run; a string = why it is skipped
 *     run(ctx): Promise<StageOutput[]>;     // pure computation, NO file writes
 *   }
 *   interface StageOutput { name: string; doc: object; tables?: Record<string, Table> }
 *
 * `ctx` (AnalyzeContext) carries the inputs (`base`, `tuned`, `checkpoints`), the common
 * options (`options`: k, alpha, layers, modules, threads, cache, exact, probe, shard, seed,
 * ...), `shared` (a Map for results one stage computes for several, e.g. the single
 * geometry pass behind spectrum, principal and bounds: use `ctx.once(key, fn)`), and `log`.
 * A stage's `doc` must be an `envelope(kind, …)` document that is a deterministic function
 * of the inputs and options (no timestamps, stable order) and, when the stage honours
 * `options.shard`, mergeable by a merger registered in src/run/merge.ts — then
 * `rlvr-lens merge` turns the shard folders into one run's folder byte for byte.
 *
 * Files are written only after every stage has finished (each atomically), then the
 * manifest: inputs (spec, path, per-file fingerprints, dtypes), options, tool version, and
 * the stages with their files (or the reason they were skipped). Nothing in it depends on
 * time or on the cache, so shard manifests merge too.
 */
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { openCheckpoint } from '../io/checkpoint.js';
import type { ModuleKind } from '../model/names.js';
import { describeInput, updateSparsity } from '../probes/sparsity.js';
import { DEFAULT_PROBE, type ProbeOptions } from '../probes/update.js';
import { type Table, envelope, writeOutputs } from '../report/output.js';
import { type GeometryRun, boundsTables, principalTables, runGeometry, spectrumTables } from './geometry.js';
import { sparsityTables } from './merge.js';
import type { ShardSpec } from './shard.js';
import { dynamicsStage, localityStage, localityWillRun, sparsityWithLocality } from '../probes/locality-stages.js';
import { writeReport } from '../report/html/index.js';
import { mapsOnMask, mapsPooledSink, mapsStage } from '../report/html/stage.js';

export interface AnalyzeOptions {
  k: number;
  alpha: number;
  layers: string | null;
  modules: ModuleKind[] | null;
  threads: number;
  /** Decomposition cache folder; null = --no-cache. Not recorded (results do not depend on it). */
  cacheDir: string | null | undefined;
  /** Regex source of tensors decomposed exactly, or null. */
  exact: string | null;
  fullSpectrum: boolean;
  probe: ProbeOptions;
  shard: ShardSpec | null;
  seed: number;
  /** topKSVD method of the geometry stages ('auto' | 'randomized' | 'gram'). */
  method: 'auto' | 'randomized' | 'gram';
  /** Only these stages (null: all enabled). */
  stages: string[] | null;
}

export const DEFAULT_ANALYZE: Readonly<AnalyzeOptions> = {
  k: 64, alpha: 0.5, layers: null, modules: null, threads: 1, cacheDir: undefined, exact: null, fullSpectrum: false,
  probe: DEFAULT_PROBE, shard: null, seed: 0, method: 'auto', stages: null,
};

export interface AnalyzeContext {
  base: string;
  tuned: readonly string[];
  checkpoints: readonly string[];
  /** Their step numbers when given (else parsed from the folder names). */
  steps?: readonly number[];
  options: AnalyzeOptions;
  shared: Map<string, unknown>;
  /** Memoised computation shared by several stages. */
  once<T>(key: string, fn: () => Promise<T>): Promise<T>;
  log(msg: string): void;
}

export interface StageOutput { name: string; doc: object; tables?: Record<string, Table> }

export interface AnalyzeStage {
  name: string;
  description: string;
  enabled?(ctx: AnalyzeContext): string | null;
  run(ctx: AnalyzeContext): Promise<StageOutput[]>;
}

function geometry(ctx: AnalyzeContext): Promise<GeometryRun> {
  return ctx.once('geometry', async () => {
    const o = ctx.options;
    const wanted = (s: string): boolean => o.stages === null || o.stages.includes(s);
    const run = await runGeometry(ctx.base, ctx.tuned, {
      k: o.k, alpha: o.alpha, threads: o.threads, cacheDir: o.cacheDir, fullSpectrum: o.fullSpectrum, probe: o.probe,
      shard: o.shard, seed: o.seed, method: o.method, ...(o.layers !== null ? { layers: o.layers } : {}), ...(o.modules ? { modules: o.modules } : {}),
      ...(o.exact !== null ? { exact: new RegExp(o.exact) } : {}),
      want: { spectrum: wanted('spectrum') || wanted('bounds'), principal: wanted('principal'), bounds: wanted('bounds') },
      onTensor: (name, done, total) => ctx.log(`geometry ${done}/${total} ${name}`),
    });
    ctx.log(`decomposition cache: ${run.cache.dir ?? 'off'} (hits ${run.cache.hits}, misses ${run.cache.misses}, writes ${run.cache.writes}${run.cache.corrupt ? `, corrupt ${run.cache.corrupt}` : ''})`);
    return run;
  });
}

export const sparsityStage: AnalyzeStage = {
  name: 'sparsity',
  description: 'update sparsity per tensor, layer, module kind (paper §2.1, SPEC §1)',
  async run(ctx) {
    // The same read feeds the report's heatmaps (maps stage), when that stage runs.
    const maps = ctx.options.shard === null && (ctx.options.stages === null || ctx.options.stages.includes('maps'));
    if (localityWillRun(ctx)) {
      // One read for sparsity, locality and the maps (the locality stage reuses the pass).
      const doc = await sparsityWithLocality(ctx, maps ? mapsPooledSink(ctx) : null);
      return [{ name: 'sparsity', doc, tables: sparsityTables(doc) }];
    }
    const doc = await updateSparsity(ctx.base, ctx.tuned, { probe: ctx.options.probe, threads: ctx.options.threads, shard: ctx.options.shard, ...(maps ? { onMask: mapsOnMask(ctx) } : {}) });
    return [{ name: 'sparsity', doc, tables: sparsityTables(doc) }];
  },
};

export const spectrumStage: AnalyzeStage = {
  name: 'spectrum',
  description: 'principal angles of U and V, NSS, singular values (paper §4.1, SPEC §3)',
  async run(ctx) {
    const g = await geometry(ctx);
    return g.spectrum ? [{ name: 'spectrum', doc: g.spectrum, tables: spectrumTables(g.spectrum) }] : [];
  },
};

export const principalStage: AnalyzeStage = {
  name: 'principal',
  description: 'overlap of updates with principal / low-magnitude weights vs random and magnitude-matched baselines (paper §4.2, SPEC §4)',
  async run(ctx) {
    const g = await geometry(ctx);
    return g.principal ? [{ name: 'principal', doc: g.principal, tables: principalTables(g.principal) }] : [];
  },
};

export const boundsStage: AnalyzeStage = {
  name: 'bounds',
  description: 'theory checks: Wedin, Weyl, Hoffman–Wielandt, Ky Fan, measured beside bound (paper §3, SPEC §5)',
  async run(ctx) {
    const g = await geometry(ctx);
    return g.bounds ? [{ name: 'bounds', doc: g.bounds, tables: boundsTables(g.bounds) }] : [];
  },
};

/** The stages, in run order. Add a stage here (one line). */
export const STAGES: AnalyzeStage[] = [
  sparsityStage,
  mapsStage,
  spectrumStage,
  principalStage,
  boundsStage,
  localityStage,
  dynamicsStage,
];

export interface AnalyzeResult {
  out: string;
  /** Files written, relative to `out`, sorted (manifest.json included). */
  files: string[];
  stages: { name: string; files: string[]; skipped: string | null }[];
  /** The HTML report written last (null for a shard folder). */
  report: string | null;
}

/** Runs the stages (see header) and writes `out`. */
export async function analyze(
  base: string, tuned: readonly string[], out: string,
  opts: Partial<AnalyzeOptions> = {}, extra: { checkpoints?: readonly string[]; steps?: readonly number[]; log?: (msg: string) => void; stages?: readonly AnalyzeStage[] } = {},
): Promise<AnalyzeResult> {
  if (tuned.length === 0) throw new UsageError('--tuned: at least one tuned checkpoint is needed');
  const options: AnalyzeOptions = { ...DEFAULT_ANALYZE, ...opts };
  const stages = extra.stages ?? STAGES;
  if (options.stages) {
    const unknown = options.stages.filter((s) => !stages.some((st) => st.name === s));
    if (unknown.length) throw new UsageError(`--stages: unknown stage(s) ${unknown.join(', ')} (available: ${stages.map((s) => s.name).join(', ')})`);
  }
  const shared = new Map<string, unknown>();
  const ctx: AnalyzeContext = {
    base, tuned, checkpoints: extra.checkpoints ?? [], ...(extra.steps ? { steps: extra.steps } : {}), options, shared,
    once<T>(key: string, fn: () => Promise<T>): Promise<T> {
      if (!shared.has(key)) shared.set(key, fn());
      return shared.get(key) as Promise<T>;
    },
    log: extra.log ?? ((): void => {}),
  };
  // Inputs first: a bad checkpoint fails before any work.
  const describe = (spec: string): ReturnType<typeof describeInput> => {
    const src = openCheckpoint(spec);
    try { return describeInput(src); } finally { src.close(); }
  };
  const inputs = { base: describe(base), tuned: tuned.map(describe), checkpoints: ctx.checkpoints.map(describe) };

  const done: { stage: AnalyzeStage; outputs: StageOutput[]; skipped: string | null }[] = [];
  for (const stage of stages) {
    let skipped: string | null = options.stages && !options.stages.includes(stage.name) ? 'not selected (--stages)' : null;
    skipped ??= stage.enabled?.(ctx) ?? null;
    if (skipped) { done.push({ stage, outputs: [], skipped }); continue; }
    ctx.log(`stage ${stage.name}`);
    done.push({ stage, outputs: await stage.run(ctx), skipped: null });
  }
  const stageFiles: AnalyzeResult['stages'] = [];
  const files: string[] = [];
  for (const d of done) {
    const fs: string[] = [];
    for (const o of d.outputs) fs.push(...writeOutputs(out, o.name, o.doc, o.tables ?? {}).map((f) => path.relative(out, f)));
    fs.sort();
    files.push(...fs);
    stageFiles.push({ name: d.stage.name, files: fs, skipped: d.skipped });
  }
  const { cacheDir: _cache, ...recorded } = options;
  const manifest = envelope('manifest', {
    command: 'rlvr-lens analyze',
    inputs,
    params: recorded,
    stages: stageFiles.map((s) => ({ name: s.name, description: done.find((d) => d.stage.name === s.name)!.stage.description, files: s.files, skipped: s.skipped })),
    files: [...files, 'manifest.json'].sort(),
  });
  writeOutputs(out, 'manifest', manifest);
  // Last: the self-contained HTML report over everything just written (not for shard folders: merge first).
  const report = options.shard ? null : (await writeReport(out)).path;
  return { out, files: [...files, 'manifest.json'].sort(), stages: stageFiles, report };
}
