/**
 * Theory checks (paper §3, App. F.3; SPEC §5): per tuned model and tensor, each bound's
 * measured value beside the bound (Wedin, Weyl, Hoffman–Wielandt, Ky Fan), and per model
 * how many were evaluated / violated and the largest measured/bound ratio.
 */
import { type Obj, pick, round } from '../access.js';
import type { ReportContext } from '../context.js';
import type { Cell, Section } from '../model.js';
import { arrOf, numOf, specOf, strOf, table } from './common.js';
import { docSpecs } from './records.js';

const CHECKS: [string, string][] = [['wedin', 'Wedin sin Θ'], ['weyl', 'Weyl'], ['hoffmanWielandt', 'Hoffman–Wielandt'], ['kyFan', 'Ky Fan']];

export function buildBounds(doc: Obj, ctx: ReportContext): Section {
  const specs = docSpecs(doc);
  const runs = specs.map((s) => ctx.run(s));
  const label = (i: number): string => ctx.runs.find((r) => r.id === runs[i])?.label ?? specs[i] ?? String(i);
  const sumRows: Cell[][] = [];
  arrOf(doc, 'summary').forEach((s, i) => {
    const checks = pick(s, 'checks');
    for (const [key, name] of CHECKS) {
      const c = pick(checks, key);
      if (c === undefined) continue;
      sumRows.push([label(i) || specOf(pick(s, 'spec')) || '', name, numOf(c, 'evaluated'), numOf(c, 'violated'), round(numOf(c, 'maxRatio'), 4)]);
    }
  });
  const rows: Cell[][] = [];
  for (const t of arrOf(doc, 'tensors')) {
    const name = strOf(t, 'name') ?? '';
    arrOf(t, 'results').forEach((r, i) => {
      if (r === null || typeof r !== 'object') return;
      for (const [key, cname] of CHECKS) {
        const c = pick(r, key);
        if (c === undefined) continue;
        const holds = pick(c, 'holds');
        rows.push([label(i), name, cname, round(numOf(c, 'measured'), 5), round(numOf(c, 'bound'), 5), round(numOf(c, 'ratio'), 4), holds === true ? 'yes' : holds === false ? 'NO' : '—']);
      }
    });
  }
  return { id: 'bounds', title: 'Theory checks (Wedin, Weyl, Hoffman–Wielandt, Ky Fan)', available: true, blocks: [
    { type: 'text', paragraphs: ['Each bound holds for every matrix pair; measured / bound ≤ 1 always (a violation means a numerical problem). Small ratios show how far RL-sized updates are from the worst case (paper §3).'] },
    table('bounds-summary', 'Per tuned model', [
      { key: 'model', label: 'tuned model', type: 'text' }, { key: 'check', label: 'bound', type: 'text' },
      { key: 'evaluated', label: 'tensors', type: 'int' }, { key: 'violated', label: 'violated', type: 'int' },
      { key: 'maxRatio', label: 'largest measured / bound', type: 'num', digits: 4 },
    ], sumRows),
    table('bounds-tensors', 'Per tensor', [
      { key: 'model', label: 'tuned model', type: 'text' }, { key: 'tensor', label: 'tensor', type: 'text' }, { key: 'check', label: 'bound', type: 'text' },
      { key: 'measured', label: 'measured', type: 'num', digits: 5 }, { key: 'bound', label: 'bound', type: 'num', digits: 5 },
      { key: 'ratio', label: 'measured / bound', type: 'num', digits: 4 }, { key: 'holds', label: 'holds', type: 'text' },
    ], rows, { facets: ['model', 'check', 'holds'] }),
  ] };
}
