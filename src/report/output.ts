/**
 * Writing tables: JSON (deterministic: same inputs → same bytes), CSV and Markdown, each
 * atomically. Every JSON output carries `tool`, `version` and `schema` fields.
 */
import * as path from 'node:path';
import { ensureDir, writeFileAtomic } from '../io/writer.js';
import { SCHEMA_VERSION, VERSION } from '../version.js';

export type Cell = string | number | boolean | null;
export interface Table {
  columns: string[];
  rows: Cell[][];
}

/** Envelope for every JSON document the tool writes. */
export function envelope<T extends object>(kind: string, body: T): { tool: string; version: string; schema: number; kind: string } & T {
  return { tool: 'rlvr-lens', version: VERSION, schema: SCHEMA_VERSION, kind, ...body };
}

/** JSON with non-finite numbers written as null (JSON has no NaN) and a final newline. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n';
}

function csvCell(c: Cell): string {
  if (c === null) return '';
  const s = typeof c === 'number' ? formatNumber(c, 9) : String(c);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(t: Table): string {
  return [t.columns.map(csvCell).join(','), ...t.rows.map((r) => r.map(csvCell).join(','))].join('\n') + '\n';
}

/** Shortest exact-enough decimal form: integers as is, else `digits` significant digits. */
export function formatNumber(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Inf' : '-Inf';
  if (Number.isInteger(x)) return String(x);
  return String(Number(x.toPrecision(digits)));
}

export function toMarkdown(t: Table, digits = 4): string {
  const fmt = (c: Cell): string => (c === null ? '' : typeof c === 'number' ? formatNumber(c, digits) : String(c).replace(/\|/g, '\\|'));
  const head = `| ${t.columns.join(' | ')} |`;
  const sep = `| ${t.columns.map((c, i) => (typeof t.rows[0]?.[i] === 'number' ? '---:' : '---')).join(' | ')} |`;
  return [head, sep, ...t.rows.map((r) => `| ${r.map(fmt).join(' | ')} |`)].join('\n') + '\n';
}

/** Plain aligned text table for the terminal. */
export function toText(t: Table, digits = 4): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map((c) => (c === null ? '' : typeof c === 'number' ? formatNumber(c, digits) : String(c))))];
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const isNum = t.columns.map((_, i) => typeof t.rows[0]?.[i] === 'number');
  return cells.map((r, ri) => r.map((c, i) => (isNum[i] && ri > 0 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** Writes `<dir>/<base>.json` and, for each table, `<dir>/<base>[.<name>].csv|md`. */
export function writeOutputs(dir: string, base: string, json: unknown, tables: Record<string, Table> = {}): string[] {
  ensureDir(dir);
  const written: string[] = [];
  const jp = path.join(dir, `${base}.json`);
  writeFileAtomic(jp, toJson(json));
  written.push(jp);
  for (const [name, t] of Object.entries(tables)) {
    const stem = name ? `${base}.${name}` : base;
    const cp = path.join(dir, `${stem}.csv`);
    writeFileAtomic(cp, toCsv(t));
    const mp = path.join(dir, `${stem}.md`);
    writeFileAtomic(mp, toMarkdown(t));
    written.push(cp, mp);
  }
  return written;
}
