/**
 * Reads an analysis folder: every `<stage>.json` written through `envelope(kind, …)`
 * (tool = rlvr-lens), `manifest.json`, and lab run logs (`*.jsonl`, here or under
 * `logs/` / `runs/`). Unreadable or foreign files are listed as problems and skipped, so
 * one bad file never costs the whole report.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlvrError, fromSystemError } from '../../errors.js';
import { type Json, type Obj, isObj, str } from './access.js';

export interface DataFile {
  /** Path relative to the analysis folder. */
  file: string;
  kind: string;
  doc: Obj;
  sha256: string;
  bytes: number;
}

export interface RunLog {
  file: string;
  /** Run name: the log's file stem (or its `run` field). */
  name: string;
  records: Obj[];
  sha256: string;
}

export interface Analysis {
  dir: string;
  /** Data documents by kind (first file wins when two have the same kind). */
  docs: Map<string, DataFile>;
  manifest: DataFile | null;
  logs: RunLog[];
  /** Files skipped, one line each. */
  problems: string[];
}

/** Files that are outputs of the report itself or not data. */
const SKIP = new Set(['report.html']);

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export function loadAnalysis(dir: string): Analysis {
  let entries: fs.Dirent[];
  try {
    if (!fs.statSync(dir).isDirectory()) throw new RlvrError('not a folder (expected an analysis folder written by rlvr-lens analyze)', { file: dir });
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw e instanceof RlvrError ? e : fromSystemError(e, dir, 'read analysis folder');
  }
  const a: Analysis = { dir, docs: new Map(), manifest: null, logs: [], problems: [] };
  const names = entries.filter((e) => e.isFile()).map((e) => e.name).sort();
  for (const name of names) {
    if (SKIP.has(name)) continue;
    if (name.endsWith('.json')) readJson(a, name);
    else if (name.endsWith('.jsonl')) readLog(a, name);
  }
  for (const sub of ['logs', 'runs']) {
    const d = path.join(dir, sub);
    if (!fs.existsSync(d) || !fs.statSync(d).isDirectory()) continue;
    for (const name of fs.readdirSync(d).sort()) if (name.endsWith('.jsonl')) readLog(a, path.join(sub, name));
  }
  return a;
}

function readJson(a: Analysis, rel: string): void {
  let buf: Buffer;
  try { buf = fs.readFileSync(path.join(a.dir, rel)); } catch (e) { a.problems.push(`${rel}: cannot read (${(e as Error).message})`); return; }
  let doc: unknown;
  try { doc = JSON.parse(buf.toString('utf8')); } catch { a.problems.push(`${rel}: not valid JSON, skipped`); return; }
  if (!isObj(doc) || doc.tool !== 'rlvr-lens' || typeof doc.kind !== 'string') {
    a.problems.push(`${rel}: not an rlvr-lens data file (no tool/kind envelope), skipped`);
    return;
  }
  const f: DataFile = { file: rel, kind: doc.kind, doc, sha256: sha256(buf), bytes: buf.byteLength };
  if (doc.kind === 'manifest') { a.manifest = f; return; }
  if (a.docs.has(doc.kind)) { a.problems.push(`${rel}: a second '${doc.kind}' file (${a.docs.get(doc.kind)!.file} is used), skipped`); return; }
  a.docs.set(doc.kind, f);
}

function readLog(a: Analysis, rel: string): void {
  let buf: Buffer;
  try { buf = fs.readFileSync(path.join(a.dir, rel)); } catch (e) { a.problems.push(`${rel}: cannot read (${(e as Error).message})`); return; }
  const records: Obj[] = [];
  let bad = 0;
  for (const line of buf.toString('utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as Json;
      if (isObj(r)) records.push(r); else bad++;
    } catch { bad++; }
  }
  if (bad) a.problems.push(`${rel}: ${bad} malformed line(s) skipped`);
  if (!records.length) return;
  const stem = path.basename(rel).replace(/\.jsonl$/, '');
  a.logs.push({ file: rel, name: str(records[0]!.run) ?? stem, records, sha256: sha256(buf) });
}
