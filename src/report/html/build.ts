/**
 * Analysis folder → ReportData. Each known stage has an adapter (sections/); a stage whose
 * file is missing becomes a section that says so; an unknown kind gets the generic view;
 * an adapter that throws on an unexpected layout falls back to the generic view with a note.
 */
import { VERSION, SCHEMA_VERSION } from '../../version.js';
import { type Obj, arr, isObj, pick, str } from './access.js';
import { ReportContext, guessRole } from './context.js';
import type { Analysis, DataFile } from './load.js';
import type { Claim, ReportData, RunInfo, Section } from './model.js';
import { specOf } from './sections/common.js';
import { buildGeneric } from './sections/generic.js';
import { buildRunLogs } from './sections/dynamics.js';
import { buildHeatmaps } from './sections/heatmaps.js';
import { buildChangeRate, buildLocality } from './sections/locality.js';
import { buildProvenance } from './sections/provenance.js';
import { buildSparsity } from './sections/sparsity.js';
import { STAGE_ADAPTERS } from './sections/stages.js';
import { buildTables } from './sections/tables.js';

export interface StageAdapter {
  /** Data-file kinds this adapter reads (first present wins). */
  kinds: string[];
  id: string;
  title: string;
  /** What is missing, said when no file of these kinds exists. */
  missing: string;
  build: (doc: Obj, ctx: ReportContext, a: Analysis) => Section;
}

/** Report order. Heatmaps come right after sparsity: they are the paper's first picture. */
export const ADAPTERS: StageAdapter[] = [
  { kinds: ['sparsity'], id: 'sparsity', title: 'Update sparsity', missing: 'no sparsity.json (rlvr-lens sparsity / analyze).', build: buildSparsity },
  { kinds: ['maps'], id: 'heatmaps', title: 'Update masks and consensus maps', missing: 'no maps.json (written by rlvr-lens analyze).', build: buildHeatmaps },
  { kinds: ['locality'], id: 'locality', title: 'Where updates land: consistency across runs', missing: 'no locality.json (needs two or more tuned models).', build: buildLocality },
  {
    kinds: ['changerate', 'change-rate', 'locality'], id: 'change-rate', title: 'Change rate by weight magnitude (Gate III)', missing: 'no change-rate data.',
    build: (doc, ctx) => buildChangeRate(doc.kind === 'locality' && isObj(doc.changeRate) ? (doc.changeRate as Obj) : doc, ctx),
  },
  ...STAGE_ADAPTERS,
];

const CLAIM_STUBS: Omit<Claim, 'available' | 'table'>[] = [
  { id: 'sparse', title: 'Sparse updates', statement: 'RL leaves most parameters unchanged; SFT updates almost all of them.' },
  { id: 'consistent', title: 'Consistent across runs', statement: 'RL runs from one base change the same entries: Jaccard far above the Bernoulli baseline.' },
  { id: 'off-principal', title: 'Off the principal weights', statement: 'RL updates avoid the principal weights: overlap with M_princ below the random baseline α.' },
  { id: 'spectrum-preserving', title: 'Spectrum preserving', statement: 'RL barely rotates the top-k singular subspaces and keeps the spectrum (small principal angles and NSS), unlike SFT.' },
  { id: 'low-magnitude', title: 'Favours low-magnitude weights', statement: 'RL updates favour small weights: overlap with M_low above α.' },
];

function registerManifestRuns(m: Obj, ctx: ReportContext): void {
  // Tuned models may be listed with roles/labels; register them first so ids follow the user's order.
  const inputs = pick(m, 'inputs') ?? m;
  for (const t of arr(pick(inputs, 'tuned', 'runs', 'models'))) {
    const spec = specOf(t);
    if (!spec) continue;
    const role = str(pick(t, 'role', 'family'));
    const r: RunInfo['role'] = role === 'rl' || role === 'sft' || role === 'other' ? role : guessRole(spec);
    ctx.run(spec, r, str(pick(t, 'label')) ?? undefined);
  }
}

export function buildReportData(a: Analysis, opts: { title?: string; roles?: Record<string, RunInfo['role']> } = {}): ReportData {
  const ctx = new ReportContext(opts.roles);
  // runs.json (labels and families, e.g. from the demo) first, then the manifest's order.
  const runsDoc = a.docs.get('runs');
  if (runsDoc) registerManifestRuns(runsDoc.doc, ctx);
  if (a.manifest) registerManifestRuns(a.manifest.doc, ctx);
  const sections: Section[] = [];
  const used = new Set<string>(['runs']);
  for (const ad of ADAPTERS) {
    const f: DataFile | undefined = ad.kinds.map((k) => a.docs.get(k)).find((x) => x !== undefined);
    if (!f) { sections.push({ id: ad.id, title: ad.title, available: false, note: `Skipped: ${ad.missing}`, blocks: [] }); continue; }
    used.add(f.kind);
    try {
      sections.push(ad.build(f.doc, ctx, a));
    } catch (e) {
      const g = buildGeneric(f.kind, f.file, f.doc);
      g.id = ad.id; g.title = ad.title;
      g.note = `This report version could not read ${f.file} in its dedicated view (${e instanceof Error ? e.message : String(e)}); showing the data as recorded.`;
      sections.push(g);
    }
  }
  sections.push(a.logs.length ? buildRunLogs(a.logs) : { id: 'runlogs', title: 'Training curves (lab run logs)', available: false, note: 'Skipped: no run logs (*.jsonl) in this folder.', blocks: [] });
  for (const [kind, f] of a.docs) if (!used.has(kind)) sections.push(buildGeneric(kind, f.file, f.doc));
  const tables = buildTables(ctx);
  sections.splice(0, 0, tables);
  sections.push(buildProvenance(a));
  const claims: Claim[] = CLAIM_STUBS.map((c) => ctx.claims.get(c.id) ?? { ...c, available: false, table: null, note: 'Not measured in this analysis (its data file is missing).' });
  const notes = [...ctx.notes];
  if (a.problems.length) notes.push(`Skipped files: ${a.problems.join('; ')}`);
  const tensors = [...ctx.tensors.values()];
  return {
    title: opts.title ?? `rlvr-lens report: ${ctx.runs.map((r) => r.label).join(', ') || 'analysis'}`,
    tool: { name: 'rlvr-lens', version: VERSION, schema: SCHEMA_VERSION },
    runs: ctx.runs,
    tensors,
    summary: { table1: ctx.table1, claims, notes },
    sections,
  };
}
