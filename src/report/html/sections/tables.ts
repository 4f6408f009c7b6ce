/**
 * The merged tables: every per-(tuned model, tensor / layer / module kind) number the
 * stages produced, side by side, sortable and filterable. Run-independent numbers (e.g. the
 * cross-run Jaccard of a tensor) are repeated on each model's row so every row is complete.
 */
import type { ReportContext, Level } from '../context.js';
import type { Cell, ColumnSpec, Section, TableBlock } from '../model.js';

function merged(ctx: ReportContext, level: Level): TableBlock | null {
  const rows = ctx.metrics.filter((m) => m.level === level);
  if (!rows.length) return null;
  const keysUsed = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r.values)) keysUsed.add(k);
  const cols = ctx.columns.filter((c) => keysUsed.has(c.key));
  const shared = new Map<string, Record<string, number | string | null>>();
  for (const r of rows) if (r.run === null) shared.set(r.key, { ...shared.get(r.key), ...r.values });
  const byRunKey = new Map<string, Record<string, number | string | null>>();
  const order: [string, string][] = [];
  for (const r of rows) {
    if (r.run === null) continue;
    const k = `${r.run}\u0000${r.key}`;
    if (!byRunKey.has(k)) { byRunKey.set(k, {}); order.push([r.run, r.key]); }
    Object.assign(byRunKey.get(k)!, r.values);
  }
  // Keys with only shared values (no per-run stage ran) still get one row.
  const runIds = ctx.runs.map((r) => r.id);
  if (order.length === 0) for (const key of shared.keys()) order.push(['', key]);
  else for (const key of shared.keys()) for (const run of runIds) if (!byRunKey.has(`${run}\u0000${key}`)) { byRunKey.set(`${run}\u0000${key}`, {}); order.push([run, key]); }
  const runIndex = new Map(runIds.map((id, i) => [id, i]));
  const tensorOrder = [...ctx.tensors.keys()];
  const keyRank = (k: string): number => (level === 'tensor' ? tensorOrder.indexOf(k) : level === 'layer' ? Number(k) : 0);
  order.sort((a, b) => (runIndex.get(a[0]) ?? -1) - (runIndex.get(b[0]) ?? -1) || keyRank(a[1]) - keyRank(b[1]) || a[1].localeCompare(b[1]));
  const lead: ColumnSpec[] = [{ key: 'run', label: 'tuned model', type: 'text' }];
  if (level === 'tensor') lead.push({ key: 'tensor', label: 'tensor', type: 'text' }, { key: 'layer', label: 'layer', type: 'int' }, { key: 'kind', label: 'module', type: 'text' }, { key: 'shape', label: 'shape', type: 'text' });
  else if (level === 'layer') lead.push({ key: 'layer', label: 'layer', type: 'int' });
  else lead.push({ key: 'kind', label: 'module', type: 'text' });
  const label = (id: string): string => ctx.runs.find((r) => r.id === id)?.label ?? (id || 'all runs');
  const data: Cell[][] = order.map(([run, key]) => {
    const v = { ...shared.get(key), ...byRunKey.get(`${run}\u0000${key}`) };
    const head: Cell[] = [label(run)];
    if (level === 'tensor') { const t = ctx.tensor(key); head.push(key, t.layer, t.kind, t.shape.join('×')); }
    else if (level === 'layer') head.push(Number(key));
    else head.push(key);
    return [...head, ...cols.map((c) => v[c.key] ?? null)];
  });
  const facets = level === 'tensor' ? ['run', 'layer', 'kind'] : level === 'layer' ? ['run'] : ['run'];
  return { type: 'table', id: `merged-${level}`, title: '', columns: [...lead, ...cols], rows: data, facets };
}

export function buildTables(ctx: ReportContext): Section {
  const tabs: { label: string; block: TableBlock }[] = [];
  for (const [level, label] of [['tensor', 'per tensor'], ['layer', 'per layer'], ['kind', 'per module kind']] as const) {
    const t = merged(ctx, level);
    if (t) tabs.push({ label, block: t });
  }
  if (!tabs.length) return { id: 'tables', title: 'Tables', available: false, note: 'No per-tensor measurements in this folder.', blocks: [] };
  return { id: 'tables', title: 'Tables per tensor, layer and module kind', available: true, blocks: [
    { type: 'text', paragraphs: ['Click a column header to sort; type in the box to filter (all words must match); the drop-downs pick one model, layer or module.'] },
    { type: 'tabs', id: 'merged', title: '', tabs },
  ] };
}
