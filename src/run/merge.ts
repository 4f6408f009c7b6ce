/**
 * `rlvr-lens merge`: joins the outputs of `--shard i/N` runs into exactly what one run would
 * have written (byte-identical JSON, and the same CSV/Markdown tables).
 *
 * A registry of mergers keyed by the document's `kind` (the `envelope` field). Each merger
 * checks that its shards agree (parameters, inputs) and rebuilds the document from the
 * union of per-tensor records; `tables` regenerates the CSV/Markdown files the writing
 * command produced. To make a new probe mergeable, add ONE entry to MERGERS (or call
 * `registerMerger` from its module).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, RlvrError, UsageError, fromSystemError } from '../errors.js';
import {
  type SparsityDoc, mergeSparsityShards, sparsityByKindTable, sparsityByLayerTable, sparsityTable, sparsityTensorTable,
} from '../probes/sparsity.js';
import { type Table, writeOutputs } from '../report/output.js';
import {
  type BoundsDoc, type PrincipalDoc, type SpectrumDoc, boundsTables, mergeGeometryShards, principalTables, spectrumTables,
} from './geometry.js';

/** Any rlvr-lens JSON document (an `envelope`). */
export interface Doc { tool: string; version: string; schema: number; kind: string; [key: string]: unknown }

export interface Merger {
  kind: string;
  merge(docs: readonly Doc[], sources: readonly string[]): Doc;
  /** The tables the writing command puts beside `<stem>.json` (see `writeOutputs`). */
  tables?(doc: Doc): Record<string, Table>;
}

export function sparsityTables(doc: SparsityDoc): Record<string, Table> {
  return { '': sparsityTable(doc), kinds: sparsityByKindTable(doc), layers: sparsityByLayerTable(doc), tensors: sparsityTensorTable(doc) };
}

/** `manifest.json` of `rlvr-lens analyze`: one run's manifest = any shard's with shard = null. */
function mergeManifests(docs: readonly Doc[], sources: readonly string[]): Doc {
  const strip = (d: Doc): string => JSON.stringify({ ...d, params: { ...(d.params as object), shard: null } });
  const first = docs[0]!;
  docs.forEach((d, i) => {
    if (strip(d) !== strip(first)) throw new RlvrError(`manifest differs from ${sources[0]} (inputs, parameters or stages)`, { file: sources[i], code: 'E_MERGE_PARAMS' });
  });
  return { ...first, params: { ...(first.params as object), shard: null } };
}

const MERGERS = new Map<string, Merger>([
  ['sparsity', { kind: 'sparsity', merge: (d, s) => mergeSparsityShards(d as unknown as SparsityDoc[], s) as unknown as Doc, tables: (d) => sparsityTables(d as unknown as SparsityDoc) }],
  ['spectrum', { kind: 'spectrum', merge: (d, s) => mergeGeometryShards(d as unknown as SpectrumDoc[], s) as unknown as Doc, tables: (d) => spectrumTables(d as unknown as SpectrumDoc) }],
  ['principal', { kind: 'principal', merge: (d, s) => mergeGeometryShards(d as unknown as PrincipalDoc[], s) as unknown as Doc, tables: (d) => principalTables(d as unknown as PrincipalDoc) }],
  ['bounds', { kind: 'bounds', merge: (d, s) => mergeGeometryShards(d as unknown as BoundsDoc[], s) as unknown as Doc, tables: (d) => boundsTables(d as unknown as BoundsDoc) }],
  ['manifest', { kind: 'manifest', merge: mergeManifests }],
]);

export function registerMerger(m: Merger): void { MERGERS.set(m.kind, m); }
export function mergerFor(kind: string): Merger | undefined { return MERGERS.get(kind); }
export function mergeableKinds(): string[] { return [...MERGERS.keys()].sort(); }

function readDoc(file: string): Doc {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw fromSystemError(e, file, 'read'); }
  let d: unknown;
  try { d = JSON.parse(text); } catch (e) { throw new FormatError(file, 'E_JSON', `not valid JSON (${(e as Error).message})`); }
  if (typeof d !== 'object' || d === null || (d as Doc).tool !== 'rlvr-lens' || typeof (d as Doc).kind !== 'string') {
    throw new FormatError(file, 'E_NOT_RLVR', 'not an rlvr-lens output document (no tool/kind fields)');
  }
  return d as Doc;
}

export interface MergeResult {
  /** Files written, relative to `out`. */
  written: string[];
  /** Documents without a merger (left out), as "file (kind)". */
  skipped: string[];
}

/**
 * Merges shard outputs. `inputs` are folders (files grouped by name: `DIR1/spectrum.json`
 * with `DIR2/spectrum.json`, ...) or JSON files (grouped by kind, written as `<kind>.json`).
 * Everything is merged in memory first; nothing is written if any group fails.
 */
export function mergeOutputs(inputs: readonly string[], out: string): MergeResult {
  if (inputs.length === 0) throw new UsageError('merge: give the shard output folders or JSON files');
  const groups = new Map<string, { files: string[]; docs: Doc[] }>();
  const add = (stem: string, file: string, doc: Doc): void => {
    const g = groups.get(stem) ?? { files: [], docs: [] };
    g.files.push(file); g.docs.push(doc);
    groups.set(stem, g);
  };
  for (const inp of inputs) {
    let st: fs.Stats;
    try { st = fs.statSync(inp); } catch (e) { throw fromSystemError(e, inp, 'read'); }
    if (st.isDirectory()) {
      const files = fs.readdirSync(inp).filter((f) => f.endsWith('.json')).sort();
      if (files.length === 0) throw new RlvrError('no .json files in this folder', { file: inp, code: 'E_MERGE_EMPTY' });
      for (const f of files) {
        const file = path.join(inp, f);
        let doc: Doc;
        try { doc = readDoc(file); } catch { continue; } // other JSON (e.g. lab logs) is not ours to merge
        add(f.slice(0, -5), file, doc);
      }
    } else {
      const doc = readDoc(inp);
      add(doc.kind, inp, doc);
    }
  }
  if (path.resolve(out) && inputs.some((i) => path.resolve(i) === path.resolve(out))) throw new UsageError('--out must not be one of the inputs');
  const results: { stem: string; doc: Doc; tables: Record<string, Table> }[] = [];
  const skipped: string[] = [];
  for (const [stem, g] of [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const kind = g.docs[0]!.kind;
    g.docs.forEach((d, i) => {
      if (d.kind !== kind) throw new RlvrError(`kind ${d.kind} differs from ${kind} in ${g.files[0]}`, { file: g.files[i], code: 'E_MERGE_KIND' });
    });
    const m = MERGERS.get(kind);
    if (!m) { skipped.push(...g.files.map((f) => `${f} (${kind})`)); continue; }
    const doc = m.merge(g.docs, g.files);
    results.push({ stem, doc, tables: m.tables ? m.tables(doc) : {} });
  }
  if (results.length === 0) throw new UsageError(`nothing mergeable in the inputs (mergeable kinds: ${mergeableKinds().join(', ')})`);
  const written: string[] = [];
  for (const r of results) written.push(...writeOutputs(out, r.stem, r.doc, r.tables).map((f) => path.relative(out, f)));
  return { written: written.sort(), skipped };
}
