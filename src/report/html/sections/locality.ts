/**
 * Where updates land across runs (paper §2.2, Table 2; SPEC §2): the "consistent across
 * runs" claim (Jaccard vs the Bernoulli and magnitude-matched baselines), Jaccard matrices,
 * Jaccard across layers, and the magnitude-conditioned change rate (Gate III).
 */
import { type Obj, arr, nums, pick, round, roundAll } from '../access.js';
import type { ReportContext } from '../context.js';
import type { Figure, LineFigure, Section } from '../model.js';
import { arrOf, entries, numOf, specOf, strOf, table } from './common.js';

const TABLE2_COLS = [
  { key: 'group', label: 'group', type: 'text' as const },
  { key: 'tensors', label: 'tensors', type: 'int' as const },
  { key: 'jaccard', label: 'mean Jaccard', type: 'num' as const, help: 'mean over run pairs of |A∩B|/|A∪B|' },
  { key: 'bernoulli', label: 'Bernoulli baseline', type: 'num' as const, help: 'E[J] = pq/(p+q−pq)' },
  { key: 'ratioB', label: 'ratio vs Bernoulli', type: 'num' as const, digits: 3 },
  { key: 'magnitude', label: 'magnitude-matched baseline', type: 'num' as const, help: 'expected J if runs changed entries independently at their per-|W0|-bin rates' },
  { key: 'ratioM', label: 'ratio vs magnitude-matched', type: 'num' as const, digits: 3 },
];

function groupRow(label: string, g: unknown): (string | number | null)[] {
  return [label, numOf(g, 'tensors'), round(numOf(g, 'meanJaccard')), round(numOf(g, 'meanBernoulli')), round(numOf(g, 'ratioBernoulli')), round(numOf(g, 'meanMagnitudeMatched')), round(numOf(g, 'ratioMagnitudeMatched'))];
}

export function buildLocality(doc: Obj, ctx: ReportContext): Section {
  const runs = arrOf(doc, 'runs', 'tuned').map((r, i) => ctx.run(specOf(r) ?? `run ${i + 1}`));
  const labels = runs.map((id) => ctx.runs.find((r) => r.id === id)!.label);
  ctx.column({ key: 'jaccard', label: 'mean Jaccard (runs)', type: 'num', help: 'same for every run: pooled over all run pairs' });
  ctx.column({ key: 'jaccardRatio', label: 'Jaccard / Bernoulli', type: 'num', digits: 3 });

  const matrices: Record<string, Figure> = {};
  for (const t of arrOf(doc, 'tensors')) {
    const name = strOf(t, 'name');
    if (!name) continue;
    const shape = arrOf(t, 'shape').filter((v): v is number => typeof v === 'number');
    ctx.tensor(name, shape);
    ctx.metric(null, 'tensor', name, { jaccard: round(numOf(t, 'meanJaccard')), jaccardRatio: round(numOf(t, 'ratioBernoulli')) });
    const J = arr(pick(t, 'jaccard')).map((row) => roundAll(nums(row), 4));
    if (J.length === runs.length && J.length > 0) {
      matrices[name] = { type: 'matrix', title: `Cross-run Jaccard of update masks: ${name}`, labels, values: J, caption: `Bernoulli baseline (mean over pairs) ${round(numOf(t, 'meanBernoulli'), 3)}, magnitude-matched ${round(numOf(t, 'meanMagnitudeMatched'), 3)}.` };
    }
  }
  const byKind = entries(pick(doc, 'byKind'), 'kind');
  const byLayer = entries(pick(doc, 'byLayer'), 'layer');
  for (const { key, item } of byKind) ctx.metric(null, 'kind', strOf(item, 'kind') ?? key, { jaccard: round(numOf(item, 'meanJaccard')), jaccardRatio: round(numOf(item, 'ratioBernoulli')) });
  for (const { item } of byLayer) {
    const l = numOf(item, 'layer');
    if (l !== null) ctx.metric(null, 'layer', String(l), { jaccard: round(numOf(item, 'meanJaccard')), jaccardRatio: round(numOf(item, 'ratioBernoulli')) });
  }
  const all = pick(doc, 'all');
  const claimRows = [groupRow('all tensors', all), ...byKind.map(({ key, item }) => groupRow(strOf(item, 'kind') ?? key, item))];
  // The paper's claim is about RL runs: when the analysis compared other models too (e.g. an
  // SFT model), pool the RL pairs alone from the per-tensor pair sums, the same way.
  const rl = runs.map((id, i) => (ctx.roleOf(id) === 'rl' ? i : -1)).filter((i) => i >= 0);
  let rlRows: (string | number | null)[][] | null = null;
  if (rl.length >= 2 && rl.length < runs.length) {
    const groups = new Map<string, Map<string, number[]>>(); // group → "r,s" → [I, U, bI, bU, mI, mU]
    const add = (g: string, key: string, v: number[]): void => {
      const m = groups.get(g) ?? new Map<string, number[]>();
      const acc = m.get(key) ?? [0, 0, 0, 0, 0, 0];
      v.forEach((x, j) => { acc[j]! += x; });
      m.set(key, acc); groups.set(g, m);
    };
    for (const t of arrOf(doc, 'tensors')) {
      for (const p of arrOf(t, 'pairs')) {
        const r = numOf(p, 'r'), s = numOf(p, 's');
        if (r === null || s === null || !rl.includes(r) || !rl.includes(s)) continue;
        const v = ['intersection', 'union', 'bernoulliIntersection', 'bernoulliUnion', 'magnitudeIntersection', 'magnitudeUnion'].map((k) => numOf(p, k) ?? NaN);
        add('all tensors', `${r},${s}`, v);
        add(strOf(t, 'kind') ?? '?', `${r},${s}`, v);
      }
    }
    const order = ['all tensors', ...byKind.map(({ key, item }) => strOf(item, 'kind') ?? key)];
    rlRows = order.filter((g) => groups.has(g)).map((g) => {
      const pairs = [...groups.get(g)!.values()];
      const m = (i: number, u: number): number => pairs.reduce((a, p) => a + p[i]! / p[u]!, 0) / pairs.length;
      const J = m(0, 1), B = m(2, 3), M = m(4, 5);
      const tensors = g === 'all tensors' ? numOf(all, 'tensors') : numOf(byKind.find(({ key, item }) => (strOf(item, 'kind') ?? key) === g)?.item, 'tensors');
      return [g, tensors, round(J), round(B), round(J / B), round(Number.isFinite(M) ? M : null), round(Number.isFinite(M) ? J / M : null)];
    });
  }
  const rlLabels = rl.map((i) => labels[i]).join(', ');
  ctx.claims.set('consistent', {
    id: 'consistent', title: 'Consistent across runs', available: true,
    statement: 'For a fixed base model, RL runs on different data and algorithms change the same entries: cross-run Jaccard far above the independent (Bernoulli) baseline (paper Table 2).',
    note: runs.length < 2 ? 'Needs at least two tuned models from the same base.' : undefined,
    table: rlRows
      ? table('claim-consistent', '', TABLE2_COLS, rlRows, { caption: `RL runs only (${rlLabels}): ${rl.length * (rl.length - 1) / 2} pair(s), pooled from the per-tensor pair sums of locality.json. All ${runs.length} tuned models together: mean Jaccard ${round(numOf(all, 'meanJaccard'), 4)} vs Bernoulli ${round(numOf(all, 'meanBernoulli'), 4)}. Ratio > 1: more overlap than chance.` })
      : table('claim-consistent', '', TABLE2_COLS, claimRows, { caption: `${labels.join(', ')}: ${runs.length * (runs.length - 1) / 2} pairs. Ratio > 1: more overlap than chance.` }),
  });

  const blocks: Section['blocks'] = [];
  blocks.push({ type: 'tabs', id: 'table2', title: 'Table 2: cross-run Jaccard', tabs: [
    { label: 'per module kind', block: table('table2-kind', '', TABLE2_COLS, claimRows) },
    { label: 'per layer', block: table('table2-layer', '', TABLE2_COLS, byLayer.map(({ key, item }) => groupRow(`layer ${numOf(item, 'layer') ?? key}`, item))) },
    { label: 'per layer × kind', block: table('table2-lk', '', TABLE2_COLS, entries(pick(doc, 'byLayerKind'), 'group').map(({ key, item }) => groupRow(strOf(item, 'group') ?? key, item)), { facets: [] }) },
  ] });
  if (byLayer.length) {
    const x = byLayer.map(({ item }) => numOf(item, 'layer') ?? 0);
    const fig: LineFigure = { type: 'line', title: 'Cross-run Jaccard per layer vs baselines', xLabel: 'layer', yLabel: 'mean Jaccard', series: [
      { name: 'observed', x, y: byLayer.map(({ item }) => round(numOf(item, 'meanJaccard'))) },
      { name: 'Bernoulli baseline', x, y: byLayer.map(({ item }) => round(numOf(item, 'meanBernoulli'))), dashed: true },
      { name: 'magnitude-matched baseline', x, y: byLayer.map(({ item }) => round(numOf(item, 'meanMagnitudeMatched'))), dashed: true },
    ] };
    blocks.push({ type: 'figure', id: 'jaccard-layers', title: 'Jaccard across layers', bind: 'none', figures: { '': fig } });
  }
  const allJ = arr(pick(all, 'jaccard')).map((row) => roundAll(nums(row), 4));
  if (allJ.length === runs.length && allJ.length > 0) blocks.push({ type: 'figure', id: 'jaccard-all', title: 'Jaccard matrix, all tensors pooled', bind: 'none', figures: { '': { type: 'matrix', title: 'Cross-run Jaccard (all tensors pooled)', labels, values: allJ } } });
  blocks.push({ type: 'figure', id: 'jaccard-tensor', title: 'Jaccard matrix of the selected tensor', bind: 'tensor', figures: matrices });
  return { id: 'locality', title: 'Where updates land: consistency across runs', available: true, blocks };
}

/** Gate III: changed fraction per binade of |W0|, per run, for all tensors and per module kind. */
export function buildChangeRate(doc: Obj, ctx: ReportContext): Section {
  const runs = arrOf(doc, 'runs').map((r, i) => ctx.run(specOf(r) ?? `run ${i + 1}`));
  const figures: Record<string, Figure> = {};
  const rows: (string | number | null)[][] = [];
  for (const g of arrOf(doc, 'groups')) {
    const group = strOf(g, 'group') ?? 'all';
    const grow = arrOf(g, 'rows').filter((r) => numOf(r, 'binade') !== null);
    const x = grow.map((r) => numOf(r, 'binade')!);
    figures[group] = { type: 'line', title: `Changed fraction per binade of |W0| (${group === 'all' ? 'all tensors' : `module ${group}`})`, xLabel: 'binade floor(log2|w0|)', yLabel: 'changed fraction', logY: false,
      series: runs.map((id, i) => ({ name: ctx.runs.find((r) => r.id === id)!.label, x, y: grow.map((r) => round(nums(pick(r, 'rate'))[i] ?? null)) })) };
    for (const r of arrOf(g, 'rows')) runs.forEach((id, i) => rows.push([group, strOf(r, 'label'), ctx.runs.find((q) => q.id === id)!.label, numOf(r, 'entries'), nums(pick(r, 'changed'))[i] ?? null, round(nums(pick(r, 'rate'))[i] ?? null)]));
  }
  return { id: 'change-rate', title: 'Change rate by weight magnitude (Gate III)', available: true, blocks: [
    { type: 'text', paragraphs: [strOf(doc, 'definition') ?? 'Fraction of entries changed per binade floor(log2|w0|) of the base weight. bf16 storage hides updates smaller than half an ULP, so small weights change more often.'] },
    { type: 'figure', id: 'changerate-all', title: 'All tensors', bind: 'none', figures: figures.all ? { '': figures.all } : {} },
    { type: 'figure', id: 'changerate-kind', title: 'Selected module kind', bind: 'kind', figures },
    table('changerate', 'Change rate table', [
      { key: 'group', label: 'group', type: 'text' }, { key: 'binade', label: 'binade', type: 'text' }, { key: 'run', label: 'tuned model', type: 'text' },
      { key: 'entries', label: 'entries', type: 'int' }, { key: 'changed', label: 'changed', type: 'int' }, { key: 'rate', label: 'changed fraction', type: 'pct', digits: 3 },
    ], rows, { facets: ['group', 'run'] }),
  ] };
}
