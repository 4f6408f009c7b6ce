/**
 * Update sparsity (paper §2.1, Table 1; SPEC §1): Table 1 (one row per tuned model), the
 * "sparse" claim (RL vs SFT), sparsity per layer and per module kind.
 */
import { type Obj, pick, round } from '../access.js';
import type { ReportContext } from '../context.js';
import type { BarFigure, LineFigure, Section } from '../model.js';
import { arrOf, entries, kindRank, numOf, specOf, strOf, table } from './common.js';

/** The per-model results of a sparsity document, whatever the list is called. */
export function sparsityModels(doc: Obj): { spec: string; m: Obj }[] {
  const list = arrOf(doc, 'models', 'tuned', 'runs', 'results');
  const out: { spec: string; m: Obj }[] = [];
  list.forEach((m, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return;
    const spec = specOf(pick(m, 'tuned', 'spec', 'path', 'name', 'model', 'id', 'label')) ?? `model ${i + 1}`;
    out.push({ spec, m: m as Obj });
  });
  return out;
}

/** Sparsity (unchanged fraction) of a group object: `sparsity`, or unchanged/numel, or 1 − changed/numel. */
export function groupSparsity(g: unknown): number | null {
  const s = numOf(g, 'sparsity', 'sparsity_bf16', 'sparsityBf16');
  if (s !== null) return s;
  const n = numOf(g, 'numel', 'n', 'entries', 'total');
  const u = numOf(g, 'unchanged');
  if (n && u !== null) return u / n;
  const c = numOf(g, 'changed');
  if (n && c !== null) return 1 - c / n;
  return null;
}

export function buildSparsity(doc: Obj, ctx: ReportContext): Section {
  const models = sparsityModels(doc);
  ctx.column({ key: 'sparsity', label: 'sparsity', type: 'pct', help: 'fraction of entries NOT changed (bf16-aware η rule, SPEC §1)' });
  const t1rows: (string | number | null)[][] = [];
  const layerSeries: LineFigure['series'] = [];
  const kindCats: string[] = [];
  const kindSeries: BarFigure['series'] = [];
  for (const { spec, m } of models) {
    const run = ctx.run(spec);
    const overall = groupSparsity(pick(m, 'overall', 'all', 'total')) ?? groupSparsity(m);
    const linear = groupSparsity(pick(m, 'linear', 'linear2d', 'linearOnly', 'linear_only'));
    const numel = numOf(pick(m, 'overall', 'all', 'total'), 'numel', 'n', 'entries');
    const nonFinite = (numOf(pick(m, 'overall', 'all', 'total'), 'nan', 'nonFinite') ?? 0) + (numOf(pick(m, 'overall', 'all', 'total'), 'inf') ?? 0);
    t1rows.push([ctx.runs.find((r) => r.id === run)!.label, ctx.roleOf(run).toUpperCase(), round(overall), round(linear), numel, nonFinite || 0]);
    for (const { key, item } of entries(pick(m, 'byKind', 'kinds', 'by_kind'), 'kind')) {
      const s = groupSparsity(item);
      ctx.metric(run, 'kind', key, { sparsity: round(s) });
      if (!kindCats.includes(key)) kindCats.push(key);
    }
    const lx: number[] = [];
    const ly: (number | null)[] = [];
    for (const { key, item } of entries(pick(m, 'byLayer', 'layers', 'by_layer'), 'layer')) {
      const s = groupSparsity(item);
      const layer = numOf(item, 'layer') ?? (Number.isFinite(Number(key)) ? Number(key) : null);
      if (layer === null) continue;
      ctx.metric(run, 'layer', String(layer), { sparsity: round(s) });
      lx.push(layer); ly.push(round(s));
    }
    if (lx.length) layerSeries.push({ name: ctx.runs.find((r) => r.id === run)!.label, x: lx, y: ly });
    for (const t of arrOf(m, 'tensors', 'perTensor')) {
      const name = strOf(t, 'name', 'tensor');
      if (!name) continue;
      const shape = arrOf(t, 'shape').filter((v): v is number => typeof v === 'number');
      ctx.tensor(name, shape);
      ctx.metric(run, 'tensor', name, { sparsity: round(groupSparsity(t)) });
    }
  }
  kindCats.sort((a, b) => kindRank(a) - kindRank(b));
  for (const { spec, m } of models) {
    const run = ctx.run(spec);
    kindSeries.push({ name: ctx.runs.find((r) => r.id === run)!.label, values: kindCats.map((k) => round(groupSparsity(entries(pick(m, 'byKind', 'kinds', 'by_kind'), 'kind').find((e) => e.key === k)?.item))) });
  }
  ctx.table1 = table('table1', 'Table 1: update sparsity per tuned model', [
    { key: 'model', label: 'tuned model', type: 'text' },
    { key: 'role', label: 'family', type: 'text', help: 'from the manifest, else guessed from the name' },
    { key: 'sparsity', label: 'sparsity (all tensors)', type: 'pct', help: 'fraction of entries unchanged' },
    { key: 'linear', label: 'sparsity (2-D linear)', type: 'pct' },
    { key: 'numel', label: 'entries', type: 'int' },
    { key: 'nonfinite', label: 'NaN/Inf', type: 'int' },
  ], t1rows, { caption: 'Sparsity = fraction of entries whose stored value did not change (for bf16: bit patterns equal, ±0 equal; SPEC §1). Paper Table 1: RL 36–92%, SFT 0.6–18.8%.' });

  // The "sparse" claim: each model's sparsity against the SFT models' (the paper's contrast).
  const sft = t1rows.filter((r) => r[1] === 'SFT').map((r) => r[2] as number | null).filter((v): v is number => v !== null);
  const sftMean = sft.length ? sft.reduce((a, b) => a + b, 0) / sft.length : null;
  ctx.claims.set('sparse', {
    id: 'sparse', title: 'Sparse updates', available: models.length > 0,
    statement: 'RL leaves most parameters unchanged (sparsity 36–92%), SFT updates almost all of them (0.6–18.8%).',
    note: sftMean === null ? 'No SFT model among the tuned models: the SFT baseline column is empty.' : undefined,
    table: table('claim-sparse', '', [
      { key: 'model', label: 'tuned model', type: 'text' },
      { key: 'role', label: 'family', type: 'text' },
      { key: 'sparsity', label: 'sparsity', type: 'pct' },
      { key: 'sft', label: 'SFT sparsity (baseline)', type: 'pct' },
      { key: 'dense', label: 'dense update', type: 'pct', help: 'a dense update changes every entry: sparsity 0' },
    ], t1rows.map((r) => [r[0] ?? null, r[1] ?? null, r[2] ?? null, sftMean, 0])),
  });

  const blocks: Section['blocks'] = [];
  if (layerSeries.length) blocks.push({ type: 'figure', id: 'sparsity-layers', title: 'Sparsity per layer', bind: 'none', figures: { '': { type: 'line', title: 'Update sparsity per layer', xLabel: 'layer', yLabel: 'sparsity (unchanged fraction)', series: layerSeries } } });
  if (kindCats.length) blocks.push({ type: 'figure', id: 'sparsity-kinds', title: 'Sparsity per module kind', bind: 'none', figures: { '': { type: 'bar', title: 'Update sparsity per module kind', xLabel: 'module', yLabel: 'sparsity', categories: kindCats, series: kindSeries } } });
  return { id: 'sparsity', title: 'Update sparsity', available: true, blocks };
}
