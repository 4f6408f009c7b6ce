/** Helpers shared by the stage adapters. */
import { type Json, arr, isObj, num, obj, pick, str } from '../access.js';
import { KIND_ORDER } from '../../../probes/locality.js';
import type { ColumnSpec, Section, TableBlock } from '../model.js';

export type SectionBuilder = (doc: import('../access.js').Obj, ctx: import('../context.js').ReportContext) => Section;

/** Arrays that may also be written as `{key: item}` maps (e.g. byKind). */
export function entries(x: Json | undefined, keyField: string): { key: string; item: import('../access.js').Obj }[] {
  if (Array.isArray(x)) {
    return x.filter(isObj).map((it, i) => ({ key: String(pick(it, keyField, 'group', 'name', 'key') ?? i), item: it }));
  }
  const o = obj(x);
  if (!o) return [];
  return Object.entries(o).filter(([, v]) => isObj(v)).map(([k, v]) => ({ key: k, item: v as import('../access.js').Obj }));
}

export function missingSection(id: string, title: string, what: string): Section {
  return { id, title, available: false, note: `Skipped: ${what}`, blocks: [] };
}

export function table(id: string, title: string, columns: ColumnSpec[], rows: (string | number | boolean | null)[][], opts: { caption?: string; facets?: string[] } = {}): TableBlock {
  return { type: 'table', id, title, columns, rows, ...(opts.caption ? { caption: opts.caption } : {}), ...(opts.facets ? { facets: opts.facets } : {}) };
}

/** A number from the first present field among `keys`. */
export function numOf(o: unknown, ...keys: string[]): number | null {
  return num(pick(o, ...keys));
}
export function strOf(o: unknown, ...keys: string[]): string | null {
  return str(pick(o, ...keys));
}
export function arrOf(o: unknown, ...keys: string[]): Json[] {
  return arr(pick(o, ...keys));
}

/** A checkpoint spec from a field that may be a string or an object with path/spec. */
export function specOf(x: unknown): string | null {
  if (typeof x === 'string') return x;
  return str(pick(x, 'spec', 'path', 'name', 'id', 'label'));
}

export function ratio(a: number | null, b: number | null): number | null {
  return a === null || b === null || b === 0 ? null : a / b;
}

/** Paper order of module kinds (Table 2: Q, K, V, O, then the MLP), unknown kinds last. */
export function kindRank(k: string): number {
  const i = (KIND_ORDER as readonly string[]).indexOf(k);
  return i < 0 ? KIND_ORDER.length : i;
}

export function layerKey(layer: number | null): string {
  return layer === null ? '' : String(layer);
}
