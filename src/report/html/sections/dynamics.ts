/**
 * Over training (paper Fig. 3, 14; SPEC §2): row / column update ratios of the selected
 * tensor at each checkpoint (smoothed, head boundaries dashed), sparsity over steps, and
 * how stable the profiles are.
 */
import { type Obj, arr, nums, pick, round, roundAll } from '../access.js';
import { type ReportContext, runLabel } from '../context.js';
import type { Figure, LineFigure, Section } from '../model.js';
import { arrOf, numOf, specOf, strOf, table } from './common.js';

/** Longest curve embedded in the report; longer profiles are block-averaged (stated in the caption). */
export const MAX_PROFILE_POINTS = 384;

/** Block means of `y` over `ceil(n / max)` consecutive indices; x = the block's first index. */
export function poolProfile(y: readonly (number | null)[], max = MAX_PROFILE_POINTS): { x: number[]; y: (number | null)[]; block: number } {
  const block = Math.max(1, Math.ceil(y.length / max));
  if (block === 1) return { x: y.map((_, j) => j), y: [...y], block };
  const xs: number[] = [], ys: (number | null)[] = [];
  for (let s = 0; s < y.length; s += block) {
    let sum = 0, n = 0;
    for (let j = s; j < Math.min(y.length, s + block); j++) { const v = y[j]; if (v !== null && v !== undefined) { sum += v; n++; } }
    xs.push(s); ys.push(n ? sum / n : null);
  }
  return { x: xs, y: ys, block };
}

function profileFigure(title: string, axis: string, steps: number[], profiles: unknown, bounds: number[]): LineFigure | null {
  const P = arr(profiles).map((p) => poolProfile(nums(p)));
  if (!P.length) return null;
  const block = P[0]!.block;
  return {
    type: 'line', title, xLabel: `${axis} index`, yLabel: 'update ratio (changed fraction, smoothed)',
    series: P.map((p, i) => ({ name: `step ${steps[i] ?? i}`, x: p.x, y: roundAll(p.y, 3) })), vlines: bounds,
    ...(block > 1 ? { caption: `Drawn as means over blocks of ${block} consecutive indices (${MAX_PROFILE_POINTS} points at most); dynamics.json has every index.` } : {}),
  };
}

export function buildDynamics(doc: Obj, ctx: ReportContext): Section {
  const steps = nums(pick(doc, 'steps')).map((s, i) => s ?? i);
  const ckpts = arrOf(doc, 'checkpoints').map((c) => specOf(c) ?? '');
  const rows: Record<string, Figure> = {};
  const cols: Record<string, Figure> = {};
  const stab: (string | number | null)[][] = [];
  for (const t of arrOf(doc, 'tensors')) {
    const name = strOf(t, 'name');
    if (!name) continue;
    ctx.tensor(name, arrOf(t, 'shape').filter((v): v is number => typeof v === 'number'));
    const axis = strOf(t, 'headAxis');
    const hb = nums(pick(t, 'headBoundaries')).filter((v): v is number => v !== null);
    const rf = profileFigure(`Row update ratio ρ_i(t): ${name}`, 'row (output feature)', steps, pick(t, 'rowSmoothed', 'rowRatios'), axis === 'rows' ? hb : []);
    const cf = profileFigure(`Column update ratio κ_j(t): ${name}`, 'column (input feature)', steps, pick(t, 'colSmoothed', 'colRatios'), axis === 'cols' ? hb : []);
    if (rf) rows[name] = rf;
    if (cf) cols[name] = cf;
    const sp = nums(pick(t, 'sparsity'));
    const last = (x: unknown): number | null => { const a = nums(x); return round(a[a.length - 1] ?? null, 4); };
    const vsFinalFirst = (x: unknown): number | null => round(nums(x)[0] ?? null, 4);
    stab.push([name, round(sp[0] ?? null), round(sp[sp.length - 1] ?? null),
      vsFinalFirst(pick(pick(t, 'rowStability'), 'vsFinal')), vsFinalFirst(pick(pick(t, 'colStability'), 'vsFinal')),
      last(pick(pick(t, 'rowStability'), 'consecutive')), last(pick(pick(t, 'colStability'), 'consecutive'))]);
  }
  const byKind = arrOf(doc, 'sparsityByKind');
  const sparsityFig: LineFigure = { type: 'line', title: 'Sparsity over training steps', xLabel: 'step', yLabel: 'sparsity (unchanged fraction)',
    series: byKind.map((g) => ({ name: strOf(g, 'kind') ?? '?', x: steps, y: roundAll(nums(pick(g, 'sparsity'))) })) };
  const blocks: Section['blocks'] = [
    { type: 'text', paragraphs: [`One run’s checkpoints: ${ckpts.length ? ckpts.map(runLabel).join(', ') : steps.length + ' steps'} (steps ${steps.join(', ')}). Ratios are the changed fraction per row (ρ) or column (κ), centered moving average of window 3; dashed lines mark attention head boundaries.`] },
    { type: 'figure', id: 'dyn-rows', title: 'Row update ratios over steps (selected tensor)', bind: 'tensor', figures: rows },
    { type: 'figure', id: 'dyn-cols', title: 'Column update ratios over steps (selected tensor)', bind: 'tensor', figures: cols },
  ];
  if (byKind.length) blocks.push({ type: 'figure', id: 'dyn-sparsity', title: 'Sparsity over steps', bind: 'none', figures: { '': sparsityFig } });
  blocks.push(table('dyn-stability', 'Profile stability per tensor', [
    { key: 'tensor', label: 'tensor', type: 'text' },
    { key: 's0', label: `sparsity @ step ${steps[0] ?? ''}`, type: 'pct' },
    { key: 's1', label: `sparsity @ step ${steps[steps.length - 1] ?? ''}`, type: 'pct' },
    { key: 'rowFirst', label: 'row profile: Spearman(first, final)', type: 'num', digits: 3, help: 'rank correlation of the earliest profile with the final one: high = stripes appear early and stay' },
    { key: 'colFirst', label: 'col profile: Spearman(first, final)', type: 'num', digits: 3 },
    { key: 'rowLast', label: 'row: Spearman(t−1, t) last', type: 'num', digits: 3 },
    { key: 'colLast', label: 'col: Spearman(t−1, t) last', type: 'num', digits: 3 },
  ], stab));
  return { id: 'dynamics', title: 'Over training: row and column update ratios', available: true, blocks };
}

/** Lab run logs (JSONL, one record per step): every numeric field against the step. */
export function buildRunLogs(logs: { name: string; records: Obj[] }[]): Section {
  const metrics: string[] = [];
  for (const l of logs) for (const r of l.records.slice(0, 50)) for (const [k, v] of Object.entries(r)) if (typeof v === 'number' && k !== 'step' && !metrics.includes(k)) metrics.push(k);
  // The curves the paper discusses first (reward, accuracy, KL to the base), then the rest as logged.
  const rank = (m: string): number => (/reward/.test(m) ? 0 : /acc/.test(m) ? 1 : /kl/.test(m) ? 2 : 3);
  metrics.sort((a, b) => rank(a) - rank(b));
  const figures: Section['blocks'] = [];
  for (const m of metrics) {
    // One colour per run across all the curves.
    const series = logs.map((l, li) => {
      const recs = l.records.filter((r) => typeof r[m] === 'number');
      return { name: l.name, x: recs.map((r, i) => numOf(r, 'step') ?? i), y: recs.map((r) => round(numOf(r, m))), color: li };
    }).filter((s) => s.x.length > 0);
    const fig: LineFigure = { type: 'line', title: `${m} per step`, xLabel: 'step', yLabel: m, series };
    figures.push({ type: 'figure', id: `log-${m}`, title: m, bind: 'none', figures: { '': fig } });
  }
  return { id: 'runlogs', title: 'Training curves (lab run logs)', available: true, layout: 'grid', blocks: [
    { type: 'text', paragraphs: [`${logs.length} run log(s): ${logs.map((l) => l.name).join(', ')}. KL direction as named in the log (SPEC §7).`] },
    ...figures,
  ] };
}
