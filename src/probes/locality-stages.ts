/**
 * The locality and dynamics probes as `rlvr-lens analyze` stages (see the stage interface
 * in src/run/analyze.ts; registered there in STAGES). Each writes DIR/<name>.json plus its
 * tables; figures come from `rlvr-lens figure` or the HTML report over those files.
 */
import { openCheckpoint } from '../io/checkpoint.js';
import { parseTensorName } from '../model/names.js';
import type { AnalyzeContext, AnalyzeStage } from '../run/analyze.js';
import { dynamicsDocument, dynamicsTables, resolveSteps, runDynamicsPass } from './dynamics.js';
import { type LocalityOptions, type LocalityResult, localityDocument, localityLayers, localityTables, runLocalityPass } from './locality.js';
import type { SparsityDoc } from './sparsity.js';

/** Why locality cannot run on this analysis, or null. */
function localitySkip(ctx: AnalyzeContext): string | null {
  if (ctx.tuned.length < 2) return 'needs at least two tuned runs from the same base';
  if (ctx.options.shard) return 'not computed per shard (run without --shard)';
  return null;
}

/** Whether the locality stage will run (so the sparsity stage can make one pass for both). */
export function localityWillRun(ctx: AnalyzeContext): boolean {
  return localitySkip(ctx) === null && (ctx.options.stages === null || ctx.options.stages.includes('locality'));
}

const PASS = 'locality-pass';

/**
 * The sparsity stage's pass when locality will run too: ONE read of every checkpoint gives the
 * full sparsity document, the locality result (kept for the locality stage) and, when given,
 * the report's pooled masks.
 */
export async function sparsityWithLocality(ctx: AnalyzeContext, maps: { side: number; add: NonNullable<LocalityOptions['onMaskImages']> } | null): Promise<SparsityDoc> {
  const r = await runLocalityPass(ctx.base, ctx.tuned, {
    probe: ctx.options.probe, threads: ctx.options.threads, fullSparsity: true,
    ...(maps ? { maskImageSide: maps.side, onMaskImages: maps.add } : {}),
    onTensor: (name, done, total) => ctx.log(`sparsity + locality ${done + 1}/${total} ${name}`),
  });
  ctx.shared.set(PASS, r);
  return r.sparsity!;
}

export const localityStage: AnalyzeStage = {
  name: 'locality',
  description: 'cross-run Jaccard of update masks vs Bernoulli and magnitude-matched baselines, consensus histogram, change rate per binade of |W0| (paper §2.2, Table 2; SPEC §2, §4)',
  enabled: localitySkip,
  async run(ctx) {
    const r = (ctx.shared.get(PASS) as LocalityResult | undefined) ?? await runLocalityPass(ctx.base, ctx.tuned, {
      probe: ctx.options.probe, threads: ctx.options.threads,
      onTensor: (name, done, total) => ctx.log(`locality ${done + 1}/${total} ${name}`),
    });
    const layer = localityLayers(r).middle;
    return [{ name: 'locality', doc: localityDocument(r, layer), tables: localityTables(r, layer) }];
  },
};

export const dynamicsStage: AnalyzeStage = {
  name: 'dynamics',
  description: 'row/column update ratios over training steps with head boundaries, sparsity over steps, profile stability (paper §2.3, Fig. 3; SPEC §2)',
  enabled(ctx) {
    if (ctx.checkpoints.length === 0) return 'no --checkpoints given';
    if (ctx.options.shard) return 'not computed per shard (run without --shard)';
    try { resolveSteps(ctx.checkpoints, ctx.steps); return null; } catch (e) { return (e as Error).message; }
  },
  async run(ctx) {
    const steps = resolveSteps(ctx.checkpoints, ctx.steps);
    const base = openCheckpoint(ctx.base);
    let layers: number[];
    try {
      layers = [...new Set(base.names.map((n) => parseTensorName(n).layer).filter((l): l is number => l !== null))].sort((a, b) => a - b);
    } finally {
      base.close();
    }
    // Full profiles for the middle layer's tensors (summaries for all).
    const mid = layers.length > 0 ? layers[Math.floor((layers.length - 1) / 2)]! : null;
    const d = await runDynamicsPass(ctx.base, ctx.checkpoints, steps, {
      probe: ctx.options.probe, threads: ctx.options.threads, profilesFor: (n) => parseTensorName(n).layer === mid,
      onTensor: (name, done, total) => ctx.log(`dynamics ${done + 1}/${total} ${name}`),
    });
    return [{ name: 'dynamics', doc: dynamicsDocument(d), tables: dynamicsTables(d) }];
  },
};
