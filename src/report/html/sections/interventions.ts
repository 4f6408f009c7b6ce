/**
 * Interventions (paper §4.3, Fig. 6): after rotating V/O or permuting heads in some
 * layers, the update mask of a run from the intervened base should overlap the same-recipe
 * run from the original base only at chance level in those layers, and as usual elsewhere.
 */
import { type Obj, nums, pick, round } from '../access.js';
import { runLabel, type ReportContext } from '../context.js';
import type { BarFigure, Section } from '../model.js';
import { arrOf, kindRank, numOf, strOf, table } from './common.js';

export function buildInterventions(doc: Obj, _ctx: ReportContext): Section {
  const tensors = arrOf(doc, 'tensors');
  const layers = [...new Set(tensors.map((t) => numOf(t, 'layer')).filter((l): l is number => l !== null))].sort((a, b) => a - b);
  const rotated = nums(pick(doc, 'rotatedLayers')).filter((x): x is number => x !== null);
  const permuted = nums(pick(doc, 'permutedLayers')).filter((x): x is number => x !== null);
  const touched = new Set([...rotated, ...permuted]);
  const pool = (ts: typeof tensors): { j: number | null; b: number | null } => {
    let i = 0, u = 0, bi = 0, bu = 0;
    for (const t of ts) { i += numOf(t, 'intersection') ?? 0; u += numOf(t, 'union') ?? 0; bi += numOf(t, 'bernoulliIntersection') ?? 0; bu += numOf(t, 'bernoulliUnion') ?? 0; }
    return { j: u > 0 ? i / u : null, b: bu > 0 ? bi / bu : null };
  };
  const attn = (t: unknown): boolean => ['q', 'k', 'v', 'o'].includes(strOf(t, 'kind') ?? '');
  const vo = (t: unknown): boolean => ['v', 'o'].includes(strOf(t, 'kind') ?? '');
  const cats = layers.map((l) => `${l}${touched.has(l) ? '*' : ''}`);
  const perLayer = layers.map((l) => ({ attn: pool(tensors.filter((t) => numOf(t, 'layer') === l && attn(t))), vo: pool(tensors.filter((t) => numOf(t, 'layer') === l && vo(t))), mlp: pool(tensors.filter((t) => numOf(t, 'layer') === l && !attn(t))) }));
  const fig: BarFigure = {
    type: 'bar', title: 'Update-mask Jaccard: run from the intervened base vs the original-base run', xLabel: 'layer (* = intervened)', yLabel: 'Jaccard',
    categories: cats,
    series: [
      { name: 'V and O projections', values: perLayer.map((p) => round(p.vo.j)) },
      { name: 'all attention (q, k, v, o)', values: perLayer.map((p) => round(p.attn.j)) },
      { name: 'MLP', values: perLayer.map((p) => round(p.mlp.j)) },
    ],
    markers: { name: 'Bernoulli baseline (V, O)', values: perLayer.map((p) => round(p.vo.b)) },
    caption: `Rotated V/O in layers ${rotated.join(', ') || 'none'}; permuted heads in layers ${permuted.join(', ') || 'none'}. Paper Fig. 6: in intervened layers the overlap drops to the random level.`,
  };
  const rows = tensors.map((t) => [strOf(t, 'name'), numOf(t, 'layer'), strOf(t, 'kind'), pick(t, 'intervened') === true ? 'yes' : 'no',
    round(numOf(t, 'densityIntervenedRun')), round(numOf(t, 'densityReferenceRun')), round(numOf(t, 'jaccard')), round(numOf(t, 'bernoulli')),
    round((numOf(t, 'jaccard') ?? NaN) / (numOf(t, 'bernoulli') ?? NaN))]);
  rows.sort((a, b) => ((a[1] as number) ?? -1) - ((b[1] as number) ?? -1) || kindRank(String(a[2])) - kindRank(String(b[2])));
  return { id: 'interventions', title: 'Interventions (rotated / permuted base)', available: true, blocks: [
    { type: 'text', paragraphs: [`${strOf(doc, 'definition') ?? ''}`, `Intervened base ${runLabel(strOf(doc, 'intervenedBase') ?? '')}; run ${runLabel(strOf(doc, 'run') ?? '')}; reference ${runLabel(strOf(doc, 'reference') ?? '')}.`] },
    { type: 'figure', id: 'intervention-bars', title: 'Overlap per layer', bind: 'none', figures: { '': fig } },
    table('intervention-tensors', 'Per tensor', [
      { key: 'tensor', label: 'tensor', type: 'text' }, { key: 'layer', label: 'layer', type: 'int' }, { key: 'kind', label: 'module', type: 'text' },
      { key: 'intervened', label: 'intervened', type: 'text' },
      { key: 'p', label: 'changed (intervened-base run)', type: 'pct' }, { key: 'q', label: 'changed (reference run)', type: 'pct' },
      { key: 'j', label: 'Jaccard', type: 'num' }, { key: 'b', label: 'Bernoulli baseline', type: 'num' }, { key: 'r', label: 'ratio', type: 'num', digits: 3 },
    ], rows, { facets: ['layer', 'kind', 'intervened'] }),
  ] };
}
