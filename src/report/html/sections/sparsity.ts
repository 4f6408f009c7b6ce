/**
 * Update sparsity (paper §2.1, Table 1; SPEC §1) from `sparsity.json` (the sparsity
 * probe's `SparsityDoc`): Table 1 (one row per tuned model), the "sparse" claim (RL vs SFT),
 * sparsity per layer and per module kind, per-tensor rows for the merged tables.
 */
import { type Obj, pick, round } from '../access.js';
import type { ReportContext } from '../context.js';
import type { BarFigure, LineFigure, Section } from '../model.js';
import { arrOf, entries, kindRank, numOf, specOf, strOf, table } from './common.js';

/** Sparsity (unchanged fraction) of an aggregate: `sparsity`, else unchanged / n. */
export function groupSparsity(g: unknown): number | null {
  const s = numOf(g, 'sparsity');
  if (s !== null) return s;
  const n = numOf(g, 'n', 'numel');
  const u = numOf(g, 'unchanged');
  return n && u !== null ? u / n : null;
}

export function buildSparsity(doc: Obj, ctx: ReportContext): Section {
  // summary[i] ↔ inputs.tuned[i] ↔ tensors[].results[i]
  const summary = arrOf(doc, 'summary');
  const runs = summary.map((s, i) => ctx.run(specOf(pick(s, 'spec')) ?? specOf(arrOf(pick(doc, 'inputs'), 'tuned')[i]) ?? `model ${i + 1}`));
  const label = (id: string): string => ctx.runs.find((r) => r.id === id)!.label;
  ctx.column({ key: 'sparsity', label: 'sparsity', type: 'pct', help: 'fraction of entries NOT changed (bf16-aware η rule, SPEC §1)' });
  const anyFp32 = summary.some((s) => numOf(pick(s, 'overall'), 'bf16VisibleSparsity') !== groupSparsity(pick(s, 'overall')));
  if (anyFp32) ctx.column({ key: 'bf16Visible', label: 'bf16-visible sparsity', type: 'pct', help: 'both sides rounded to bf16 (RNE), bits compared' });

  const t1rows: (string | number | null)[][] = [];
  const layerSeries: LineFigure['series'] = [];
  const kindCats: string[] = [];
  summary.forEach((s, i) => {
    const run = runs[i]!;
    const overall = pick(s, 'overall');
    const skipped = pick(s, 'skipped');
    const nSkipped = (numOf(skipped, 'missing') ?? 0) + (numOf(skipped, 'shapeMismatch') ?? 0) + (numOf(skipped, 'nonFloat') ?? 0);
    t1rows.push([label(run), ctx.family(run), round(groupSparsity(overall)), round(groupSparsity(pick(s, 'linear'))),
      round(numOf(overall, 'bf16VisibleSparsity')), numOf(overall, 'n'), numOf(overall, 'tensors'), numOf(s, 'nonFinite'), nSkipped]);
    for (const { key, item } of entries(pick(s, 'byKind'), 'kind')) {
      ctx.metric(run, 'kind', key, { sparsity: round(groupSparsity(item)), ...(anyFp32 ? { bf16Visible: round(numOf(item, 'bf16VisibleSparsity')) } : {}) });
      if (!kindCats.includes(key)) kindCats.push(key);
    }
    const lx: number[] = [], ly: (number | null)[] = [];
    for (const { item } of entries(pick(s, 'byLayer'), 'layer')) {
      const layer = numOf(item, 'layer');
      if (layer === null) continue;
      ctx.metric(run, 'layer', String(layer), { sparsity: round(groupSparsity(item)), ...(anyFp32 ? { bf16Visible: round(numOf(item, 'bf16VisibleSparsity')) } : {}) });
      lx.push(layer); ly.push(round(groupSparsity(item)));
    }
    if (lx.length) layerSeries.push({ name: label(run), x: lx, y: ly });
  });
  for (const t of arrOf(doc, 'tensors')) {
    const name = strOf(t, 'name');
    if (!name) continue;
    ctx.tensor(name, arrOf(t, 'shape').filter((v): v is number => typeof v === 'number'));
    arrOf(t, 'results').forEach((r, i) => {
      if (!runs[i] || r === null) return;
      ctx.metric(runs[i]!, 'tensor', name, { sparsity: round(numOf(r, 'sparsity')), ...(anyFp32 ? { bf16Visible: round(numOf(r, 'bf16VisibleSparsity')) } : {}) });
    });
  }
  kindCats.sort((a, b) => kindRank(a) - kindRank(b));
  const kindSeries: BarFigure['series'] = summary.map((s, i) => ({
    name: label(runs[i]!),
    values: kindCats.map((k) => round(groupSparsity(entries(pick(s, 'byKind'), 'kind').find((e) => e.key === k)?.item))),
  }));

  const params = pick(doc, 'params');
  const rule = strOf(params, 'probe') === 'abs' ? `abs rule |Δ| ≤ ${numOf(params, 'tol')}` : `η rule, η = ${numOf(params, 'eta') ?? 1e-3}${pick(params, 'bitwiseFastPath') === true ? ' (bf16 pairs compared bitwise, exact by Prop. E.3)' : ''}`;
  ctx.table1 = table('table1', 'Table 1: update sparsity per tuned model', [
    { key: 'model', label: 'tuned model', type: 'text' },
    { key: 'role', label: 'family', type: 'text', help: 'from the manifest, else guessed from the name' },
    { key: 'sparsity', label: 'sparsity (all tensors)', type: 'pct', help: 'fraction of entries unchanged' },
    { key: 'linear', label: 'sparsity (2-D linear)', type: 'pct' },
    { key: 'bf16', label: 'bf16-visible sparsity', type: 'pct', help: 'equal to sparsity for bf16 checkpoints; for fp32, both sides rounded to bf16 first (Gate III)' },
    { key: 'numel', label: 'entries', type: 'int' },
    { key: 'tensors', label: 'tensors', type: 'int' },
    { key: 'nonfinite', label: 'NaN/Inf', type: 'int' },
    { key: 'skipped', label: 'tensors skipped', type: 'int', help: 'missing, shape-mismatched or non-float tensors (listed in sparsity.json pairing)' },
  ], t1rows, { caption: `Sparsity = fraction of entries whose value did not change; ${rule}. Paper Table 1: RL 36–92%, SFT 0.6–18.8%.` });

  // The "sparse" claim: each model's sparsity next to the SFT models' (the paper's contrast).
  const sft = t1rows.filter((r) => r[1] === 'SFT').map((r) => r[2] as number | null).filter((v): v is number => v !== null);
  const sftMean = sft.length ? sft.reduce((a, b) => a + b, 0) / sft.length : null;
  ctx.claims.set('sparse', {
    id: 'sparse', title: 'Sparse updates', available: summary.length > 0,
    statement: 'RL leaves most parameters unchanged (sparsity 36–92% in the paper), SFT updates almost all of them (0.6–18.8%).',
    note: sftMean === null ? 'No SFT model among the tuned models: the SFT baseline column is empty.' : undefined,
    table: table('claim-sparse', '', [
      { key: 'model', label: 'tuned model', type: 'text' },
      { key: 'role', label: 'family', type: 'text' },
      { key: 'sparsity', label: 'sparsity', type: 'pct' },
      { key: 'sft', label: 'SFT sparsity (baseline, mean)', type: 'pct' },
      { key: 'dense', label: 'dense update', type: 'pct', help: 'a dense update changes every entry: sparsity 0' },
    ], t1rows.map((r) => [r[0] ?? null, r[1] ?? null, r[2] ?? null, sftMean, 0])),
  });

  const blocks: Section['blocks'] = [{ type: 'text', paragraphs: [`Probe: ${rule}. Non-finite values are counted per tensor, never silently.`] }];
  if (layerSeries.length) blocks.push({ type: 'figure', id: 'sparsity-layers', title: 'Sparsity per layer', bind: 'none', figures: { '': { type: 'line', title: 'Update sparsity per layer', xLabel: 'layer', yLabel: 'sparsity (unchanged fraction)', series: layerSeries } } });
  if (kindCats.length) blocks.push({ type: 'figure', id: 'sparsity-kinds', title: 'Sparsity per module kind', bind: 'none', figures: { '': { type: 'bar', title: 'Update sparsity per module kind', xLabel: 'module', yLabel: 'sparsity', categories: kindCats, series: kindSeries } } });
  const pairing = arrOf(doc, 'pairing');
  const pairRows: (string | number | null)[][] = [];
  pairing.forEach((p, i) => {
    for (const m of arrOf(p, 'missing')) pairRows.push([label(runs[i] ?? ''), 'missing in tuned', String(m)]);
    for (const m of arrOf(p, 'extra')) pairRows.push([label(runs[i] ?? ''), 'extra (not in base)', String(m)]);
    for (const m of arrOf(p, 'shapeMismatch')) pairRows.push([label(runs[i] ?? ''), 'shape mismatch', strOf(m, 'name')]);
    for (const m of arrOf(p, 'dtypeChanged')) pairRows.push([label(runs[i] ?? ''), `dtype ${strOf(m, 'base')}→${strOf(m, 'tuned')}`, strOf(m, 'name')]);
    for (const m of arrOf(p, 'nonFloat')) pairRows.push([label(runs[i] ?? ''), 'non-float, skipped', strOf(m, 'name')]);
  });
  if (pairRows.length) blocks.push(table('pairing', 'Tensor pairing problems (skipped or decoded)', [
    { key: 'run', label: 'tuned model', type: 'text' }, { key: 'what', label: 'problem', type: 'text' }, { key: 'tensor', label: 'tensor', type: 'text' },
  ], pairRows, { facets: ['run', 'what'] }));
  return { id: 'sparsity', title: 'Update sparsity', available: true, blocks };
}
