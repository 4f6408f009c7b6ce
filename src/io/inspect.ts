/**
 * What is in a checkpoint, from its headers alone (no tensor data is read): every tensor's
 * dtype, shape, bytes, layer and module kind; totals; shards; the config summary. Backs
 * `rlvr-lens inspect`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromSystemError } from '../errors.js';
import { type ModuleKind, parseTensorName } from '../model/names.js';
import type { Table } from '../report/output.js';
import type { TensorSource } from './checkpoint.js';
import type { DType } from './dtype.js';

export interface TensorSummary {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly numel: number;
  readonly bytes: number;
  /** Decoder layer index, null outside the layer stack. */
  readonly layer: number | null;
  readonly kind: ModuleKind;
  /** Shard file, relative to the checkpoint folder. */
  readonly file: string;
}

export interface ShardSummary {
  /** Relative to the checkpoint folder. */
  readonly file: string;
  /** File size on disk, bytes. */
  readonly size: number;
  readonly tensors: number;
}

export interface GroupTotals {
  readonly tensors: number;
  readonly params: number;
  readonly bytes: number;
}

export interface ConfigSummary {
  readonly modelType: string | null;
  readonly architectures: readonly string[];
  readonly numLayers: number | null;
  readonly hiddenSize: number | null;
  readonly intermediateSize: number | null;
  readonly numHeads: number | null;
  readonly numKvHeads: number | null;
  readonly headDim: number | null;
  readonly vocabSize: number | null;
  readonly tieWordEmbeddings: boolean;
  readonly numExperts: number | null;
}

export interface CheckpointSummary {
  /** What the user passed. */
  readonly checkpoint: string;
  readonly shards: readonly ShardSummary[];
  readonly numTensors: number;
  readonly totalParams: number;
  readonly totalBytes: number;
  /** Distinct decoder layer indices seen in tensor names. */
  readonly layersInNames: number;
  readonly byDtype: Readonly<Record<string, GroupTotals>>;
  readonly byKind: Readonly<Record<string, GroupTotals>>;
  readonly config: ConfigSummary | null;
  /** `__metadata__` of the first shard. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Natural-sorted by name. */
  readonly tensors: readonly TensorSummary[];
}

function add(m: Record<string, GroupTotals>, key: string, numel: number, bytes: number): void {
  const g = m[key] ?? { tensors: 0, params: 0, bytes: 0 };
  m[key] = { tensors: g.tensors + 1, params: g.params + numel, bytes: g.bytes + bytes };
}

/** Keys in a fixed order, so JSON output is byte-stable. */
function sortedRecord<T>(m: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Summarizes an open checkpoint from its headers. */
export function summarizeCheckpoint(src: TensorSource): CheckpointSummary {
  let base = src.root;
  try {
    if (!fs.statSync(src.root).isDirectory()) base = path.dirname(src.root);
  } catch (e) {
    throw fromSystemError(e, src.spec, 'stat');
  }
  const rel = (f: string): string => path.relative(base, f).split(path.sep).join('/');
  const perFile = new Map<string, number>();
  const tensors: TensorSummary[] = [];
  const byDtype: Record<string, GroupTotals> = {};
  const byKind: Record<string, GroupTotals> = {};
  const layers = new Set<number>();
  let totalParams = 0;
  let totalBytes = 0;
  for (const name of src.names) {
    const t = src.info(name);
    const p = parseTensorName(name);
    const file = rel(t.file);
    tensors.push({ name, dtype: t.dtype, shape: [...t.shape], numel: t.numel, bytes: t.byteLength, layer: p.layer, kind: p.kind, file });
    perFile.set(t.file, (perFile.get(t.file) ?? 0) + 1);
    add(byDtype, t.dtype, t.numel, t.byteLength);
    add(byKind, p.kind, t.numel, t.byteLength);
    if (p.layer !== null) layers.add(p.layer);
    totalParams += t.numel;
    totalBytes += t.byteLength;
  }
  const shards = src.files.map((f) => {
    let size: number;
    try {
      size = fs.statSync(f).size;
    } catch (e) {
      throw fromSystemError(e, f, 'stat');
    }
    return { file: rel(f), size, tensors: perFile.get(f) ?? 0 };
  });
  const c = src.config;
  const config: ConfigSummary | null = c === null ? null : {
    modelType: c.modelType ?? null,
    architectures: [...c.architectures],
    numLayers: c.numLayers ?? null,
    hiddenSize: c.hiddenSize ?? null,
    intermediateSize: c.intermediateSize ?? null,
    numHeads: c.numHeads ?? null,
    numKvHeads: c.numKvHeads ?? null,
    headDim: c.headDim ?? null,
    vocabSize: c.vocabSize ?? null,
    tieWordEmbeddings: c.tieWordEmbeddings,
    numExperts: c.numExperts ?? null,
  };
  return {
    checkpoint: src.spec,
    shards,
    numTensors: tensors.length,
    totalParams,
    totalBytes,
    layersInNames: layers.size,
    byDtype: sortedRecord(byDtype),
    byKind: sortedRecord(byKind),
    config,
    metadata: sortedRecord({ ...src.metadata }),
    tensors,
  };
}

/** The tables `inspect` prints: one row per tensor, and totals per dtype. */
export function inspectTables(s: CheckpointSummary): { tensors: Table; dtypes: Table } {
  return {
    tensors: {
      columns: ['name', 'dtype', 'shape', 'params', 'bytes', 'layer', 'kind', 'file'],
      rows: s.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, t.numel, t.bytes, t.layer, t.kind, t.file]),
    },
    dtypes: {
      columns: ['dtype', 'tensors', 'params', 'bytes'],
      rows: Object.entries(s.byDtype).map(([d, g]) => [d, g.tensors, g.params, g.bytes]),
    },
  };
}

/** Bytes as a short human string (binary units). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]}`;
}
