/**
 * A section for a data file no dedicated adapter knows (a newer stage, or a field layout
 * that changed): every list of flat records becomes a sortable table and the parameters
 * are shown as recorded. The report degrades to "plain but complete" instead of dropping data.
 */
import { type Json, type Obj, isObj } from '../access.js';
import type { Block, ColumnSpec, Section } from '../model.js';
import { table } from './common.js';

const MAX_TABLES = 12;
const MAX_ROWS = 5000;

function isScalar(v: unknown): v is string | number | boolean | null {
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';
}

function findTables(x: Json, at: string, depth: number, out: { path: string; rows: Obj[] }[]): void {
  if (out.length >= MAX_TABLES || depth > 4) return;
  if (Array.isArray(x)) {
    const objs = x.filter(isObj);
    if (objs.length > 0 && objs.length === x.length) {
      const scalarShare = objs.slice(0, 20).reduce((a, o) => a + Object.values(o).filter(isScalar).length / Math.max(1, Object.keys(o).length), 0) / Math.min(20, objs.length);
      if (scalarShare >= 0.4) { out.push({ path: at, rows: objs }); }
      // Nested lists inside records (e.g. per-run results of each tensor) are tables too.
      for (const [k, v] of Object.entries(objs[0]!)) if (Array.isArray(v) && v.some(isObj)) findTables(v, `${at}[0].${k}`, depth + 1, out);
    }
    return;
  }
  if (isObj(x)) for (const [k, v] of Object.entries(x)) {
    if (k === 'params' || k === 'parameters') continue;
    findTables(v, at ? `${at}.${k}` : k, depth + 1, out);
  }
}

export function genericBlocks(doc: Obj, idPrefix: string): Block[] {
  const found: { path: string; rows: Obj[] }[] = [];
  findTables(doc, '', 0, found);
  const blocks: Block[] = [];
  found.forEach(({ path, rows }, i) => {
    const keys: string[] = [];
    for (const r of rows.slice(0, 200)) for (const [k, v] of Object.entries(r)) if (isScalar(v) && !keys.includes(k)) keys.push(k);
    const sample = (k: string): unknown => rows.find((r) => r[k] !== null && r[k] !== undefined)?.[k];
    const columns: ColumnSpec[] = keys.map((k) => ({ key: k, label: k, type: typeof sample(k) === 'number' ? (Number.isInteger(sample(k)) ? 'int' : 'num') : 'text' }));
    const data = rows.slice(0, MAX_ROWS).map((r) => keys.map((k) => (isScalar(r[k]) ? (r[k] as string | number | boolean | null) : null)));
    blocks.push(table(`${idPrefix}-${i}`, path || 'records', columns, data, rows.length > MAX_ROWS ? { caption: `first ${MAX_ROWS} of ${rows.length} records` } : {}));
  });
  return blocks;
}

export function buildGeneric(kind: string, file: string, doc: Obj): Section {
  const blocks: Block[] = [{ type: 'text', paragraphs: [`Data file ${file} (kind '${kind}') shown as recorded: this report version has no dedicated view for it.`] }];
  blocks.push(...genericBlocks(doc, `gen-${kind}`));
  const params = doc.params ?? doc.parameters;
  if (params !== undefined) blocks.push({ type: 'json', title: 'parameters', value: params });
  return { id: `data-${kind}`, title: `Data: ${kind}`, available: true, blocks };
}
