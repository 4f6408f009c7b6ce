/**
 * Update sparsity (paper §2.1, Table 1; SPEC §1): the fraction of entries a fine-tuned
 * model left unchanged relative to its base, per tensor, per layer, per module kind, over
 * 2-D linear weights and over all tensors — for one base and any number of tuned models in
 * one pass that reads the base once.
 *
 * Library API
 * - `updateSparsity(base, tuned[], options)` → a `SparsityDoc` (the versioned JSON, schema
 *   in docs/schema-sparsity.md). Checkpoints are specs (file, folder, sharded index, or HF
 *   cache id). Each base chunk is read once and compared against every tuned model's chunk.
 * - Masks for other probes: pass `onMask(tunedIndex, name, mask)`; it receives the
 *   primary-rule update mask (a BitMask, bit = changed) of every paired tensor for every
 *   tuned model, in natural tensor order and, within a tensor, in tuned order — also with
 *   `threads > 1` (masks computed in workers are transferred, not copied). Locality and
 *   dynamics code reuse the single read this way, e.g.
 *     await updateSparsity(base, runs, { filter: isLinear, onMask: (r, name, m) => keep(r, name, m) })
 *   The mask object is yours to keep; memory is one tensor's masks per tuned model in flight.
 * - `summarizeSparsity(records, …)` is the pure aggregation from per-tensor records, and
 *   `mergeSparsityShards(docs)` joins `--shard i/N` outputs into the document a single run
 *   would have written, byte for byte (both go through `buildSparsityDoc`).
 *
 * Fingerprints: each input file is identified by its size, the SHA-256 of its header and
 * the SHA-256 of three 64 KiB samples of its data (start, middle, end). Hashing 100 GB
 * would take minutes; mtime is deliberately left out so that copies and fresh checkouts of
 * the same bytes get the same fingerprint (and golden outputs stay stable).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlvrError, UsageError, fromSystemError } from '../errors.js';
import { type TensorSource, openCheckpoint } from '../io/checkpoint.js';
import { type DType, isFloatDType } from '../io/dtype.js';
import { MODULE_KINDS, type ModuleKind, compareTensorNames, isLinearWeight, parseTensorName } from '../model/names.js';
import { type Table, envelope } from '../report/output.js';
import { type Pairing, pairTensors, requireSharedTensors } from '../run/pair.js';
import { defaultThreads, runOrdered, startWorker, workerUrl } from '../run/pool.js';
import type { SparsityWorkerData } from '../run/sparsity-worker.js';
import { type ShardSpec, joinShardOutputs, selectShard } from '../run/shard.js';
import { BitMask } from './mask.js';
import type { ProfileRequest, TensorProfile } from './locality-tensor.js';
import { type EngineConfig, type RangeResult, type RangeTask, compareRange, createScratch } from './sparsity-engine.js';
import { DEFAULT_PROBE, type ProbeOptions } from './update.js';

// ---------------------------------------------------------------------------------------
// The document
// ---------------------------------------------------------------------------------------

export interface SparsityParams {
  /** Primary rule: 'bf16' = the η rule (paper Def. 2.1), 'abs' = |Δ| ≤ tol. */
  probe: 'bf16' | 'abs';
  eta: number;
  tol: number;
  compareProbes: boolean;
  /** True when η ≤ 2^-9, i.e. bf16 pairs are decided by comparing bits (Prop. E.3). */
  bitwiseFastPath: boolean;
  /** This document covers shard `index` of `count` (null: every tensor). */
  shard: ShardSpec | null;
}

export interface FileFingerprint {
  /** Path relative to the checkpoint folder. */
  file: string;
  size: number;
  headerSha256: string;
  sampleSha256: string;
}

export interface InputRecord {
  spec: string;
  /** Resolved path, relative to the working directory when inside it. */
  path: string;
  files: FileFingerprint[];
  tensors: number;
  /** Tensor count per storage dtype. */
  dtypes: Record<string, number>;
  /** SHA-256 over the files' fingerprints. */
  fingerprint: string;
}

export interface PairingRecord {
  tuned: number;
  missing: string[];
  extra: string[];
  shapeMismatch: { name: string; base: number[]; tuned: number[] }[];
  dtypeChanged: { name: string; base: string; tuned: string }[];
  nonFloat: { name: string; base: string; tuned: string }[];
}

export interface TensorResult {
  tunedDtype: DType;
  unchanged: number;
  sparsity: number;
  bf16VisibleUnchanged: number;
  bf16VisibleSparsity: number;
  nonFinite: number;
  nanTuned: number;
  infTuned: number;
  /** --compare-probes only (else null). */
  absChangedBf16Unchanged: number | null;
  bf16ChangedAbsUnchanged: number | null;
}

export interface TensorRecord {
  name: string;
  kind: ModuleKind;
  layer: number | null;
  /** A 2-D linear weight (`isLinearWeight`). */
  linear: boolean;
  shape: number[];
  numel: number;
  baseDtype: DType;
  nanBase: number;
  infBase: number;
  /** One entry per tuned model, in --tuned order; null where that model lacks the tensor
   * (or its shape/dtype kind differs: see pairing). */
  results: (TensorResult | null)[];
}

export interface Aggregate {
  tensors: number;
  n: number;
  unchanged: number;
  sparsity: number;
  bf16VisibleUnchanged: number;
  bf16VisibleSparsity: number;
}

export interface TunedSummary {
  tuned: number;
  spec: string;
  overall: Aggregate;
  /** 2-D linear weights only. */
  linear: Aggregate;
  byKind: ({ kind: ModuleKind } & Aggregate)[];
  byLayer: ({ layer: number } & Aggregate)[];
  nonFinite: number;
  /** Tensors with NaN/Inf on either side. */
  tensorsWithNonFinite: string[];
  compare: { absChangedBf16Unchanged: number; bf16ChangedAbsUnchanged: number } | null;
  skipped: { missing: number; extra: number; shapeMismatch: number; nonFloat: number; dtypeChanged: number };
}

export interface SparsityBody {
  params: SparsityParams;
  fingerprintMethod: string;
  inputs: { base: InputRecord; tuned: InputRecord[] };
  pairing: PairingRecord[];
  summary: TunedSummary[];
  tensors: TensorRecord[];
}

export type SparsityDoc = ReturnType<typeof envelope<SparsityBody>>;

export const FINGERPRINT_METHOD = 'per file: size, SHA-256 of the header, SHA-256 of three 64 KiB data samples (start, middle, end); mtime not used';

// ---------------------------------------------------------------------------------------
// Pure aggregation
// ---------------------------------------------------------------------------------------

function emptyAgg(): Aggregate {
  return { tensors: 0, n: 0, unchanged: 0, sparsity: NaN, bf16VisibleUnchanged: 0, bf16VisibleSparsity: NaN };
}
function add(a: Aggregate, t: TensorRecord, r: TensorResult): void {
  a.tensors++;
  a.n += t.numel;
  a.unchanged += r.unchanged;
  a.bf16VisibleUnchanged += r.bf16VisibleUnchanged;
}
function fin(a: Aggregate): Aggregate {
  a.sparsity = a.n > 0 ? a.unchanged / a.n : NaN;
  a.bf16VisibleSparsity = a.n > 0 ? a.bf16VisibleUnchanged / a.n : NaN;
  return a;
}

/** Aggregates (overall, linear, per kind, per layer) from per-tensor records: a pure function. */
export function summarizeSparsity(tensors: readonly TensorRecord[], tunedSpecs: readonly string[], pairing: readonly PairingRecord[], compareProbes: boolean): TunedSummary[] {
  return tunedSpecs.map((spec, ti) => {
    const overall = emptyAgg(), linear = emptyAgg();
    const kinds = new Map<ModuleKind, Aggregate>(), layers = new Map<number, Aggregate>();
    let nonFinite = 0, absOnly = 0, etaOnly = 0;
    const withNonFinite: string[] = [];
    for (const t of tensors) {
      const r = t.results[ti];
      if (!r) continue;
      add(overall, t, r);
      if (t.linear) add(linear, t, r);
      if (!kinds.has(t.kind)) kinds.set(t.kind, emptyAgg());
      add(kinds.get(t.kind)!, t, r);
      if (t.layer !== null) {
        if (!layers.has(t.layer)) layers.set(t.layer, emptyAgg());
        add(layers.get(t.layer)!, t, r);
      }
      nonFinite += r.nonFinite;
      if (r.nonFinite > 0) withNonFinite.push(t.name);
      absOnly += r.absChangedBf16Unchanged ?? 0;
      etaOnly += r.bf16ChangedAbsUnchanged ?? 0;
    }
    const p = pairing[ti]!;
    return {
      tuned: ti, spec,
      overall: fin(overall), linear: fin(linear),
      byKind: MODULE_KINDS.filter((k) => kinds.has(k)).map((k) => ({ kind: k, ...fin(kinds.get(k)!) })),
      byLayer: [...layers.keys()].sort((a, b) => a - b).map((l) => ({ layer: l, ...fin(layers.get(l)!) })),
      nonFinite, tensorsWithNonFinite: withNonFinite,
      compare: compareProbes ? { absChangedBf16Unchanged: absOnly, bf16ChangedAbsUnchanged: etaOnly } : null,
      skipped: { missing: p.missing.length, extra: p.extra.length, shapeMismatch: p.shapeMismatch.length, nonFloat: p.nonFloat.length, dtypeChanged: p.dtypeChanged.length },
    };
  });
}

/** The document from its parts; tensors are sorted and the summary recomputed. */
export function buildSparsityDoc(params: SparsityParams, inputs: SparsityBody['inputs'], pairing: PairingRecord[], tensors: TensorRecord[]): SparsityDoc {
  const sorted = [...tensors].sort((a, b) => compareTensorNames(a.name, b.name));
  const summary = summarizeSparsity(sorted, inputs.tuned.map((t) => t.spec), pairing, params.compareProbes);
  return envelope('sparsity', { params, fingerprintMethod: FINGERPRINT_METHOD, inputs, pairing, summary, tensors: sorted });
}


/**
 * Joins the outputs of `--shard i/N` runs (any order) into the document one run over all
 * tensors would have produced, byte for byte. Every shard 0..N-1 must be present once, with
 * identical parameters, inputs and pairing. `sources` (e.g. file names) label errors.
 */
export function mergeSparsityShards(docs: readonly SparsityDoc[], sources?: readonly string[]): SparsityDoc {
  const label = (i: number): string => sources?.[i] ?? `document ${i + 1}`;
  const tensors = joinShardOutputs(docs, 'sparsity', label, [['pairing', 'tensor pairing']]);
  const first = docs[0]!;
  return buildSparsityDoc({ ...first.params, shard: null }, first.inputs, first.pairing, tensors);
}

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

function displayPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel === '' ? '.' : !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
}

const SAMPLE = 65536;

/** Size + header hash + sampled data hash of one safetensors file (see module header). */
export function fingerprintFile(file: string): Omit<FileFingerprint, 'file'> {
  let fd: number;
  try { fd = fs.openSync(file, 'r'); } catch (e) { throw fromSystemError(e, file, 'open'); }
  try {
    const size = fs.fstatSync(fd).size;
    const read = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(Math.max(0, Math.min(len, size - pos)));
      let done = 0;
      while (done < b.length) { const n = fs.readSync(fd, b, done, b.length - done, pos + done); if (n === 0) break; done += n; }
      return b.subarray(0, done);
    };
    const lenBuf = read(0, 8);
    const hlen = lenBuf.length === 8 ? Number(lenBuf.readBigUInt64LE(0)) : 0;
    const headerSha256 = createHash('sha256').update(read(0, 8 + Math.min(hlen, size))).digest('hex');
    const dataStart = Math.min(size, 8 + hlen), dataLen = size - dataStart;
    const h = createHash('sha256');
    for (const off of [0, Math.max(0, Math.floor(dataLen / 2) - SAMPLE / 2), Math.max(0, dataLen - SAMPLE)]) h.update(read(dataStart + off, SAMPLE));
    return { size, headerSha256, sampleSha256: h.digest('hex') };
  } catch (e) {
    throw e instanceof RlvrError ? e : fromSystemError(e, file, 'read');
  } finally {
    fs.closeSync(fd);
  }
}

export function describeInput(src: TensorSource): InputRecord {
  const rootDir = src.files.length === 1 && src.root === src.files[0] ? path.dirname(src.root) : src.root;
  const files = src.files.map((f) => ({ file: path.relative(rootDir, f), ...fingerprintFile(f) }));
  const dtypes: Record<string, number> = {};
  for (const n of src.names) { const d = src.info(n).dtype; dtypes[d] = (dtypes[d] ?? 0) + 1; }
  const sortedDtypes = Object.fromEntries(Object.entries(dtypes).sort(([a], [b]) => (a < b ? -1 : 1)));
  const fingerprint = createHash('sha256').update(JSON.stringify(files)).digest('hex');
  return { spec: src.spec, path: displayPath(src.root), files, tensors: src.names.length, dtypes: sortedDtypes, fingerprint };
}

function pairingRecord(ti: number, p: Pairing): PairingRecord {
  return {
    tuned: ti, missing: p.missing, extra: p.extra,
    shapeMismatch: p.shapeMismatch.map((m) => ({ name: m.name, base: m.base, tuned: m.tuned })),
    dtypeChanged: p.dtypeChanged.map((m) => ({ name: m.name, base: m.base, tuned: m.tuned })),
    nonFloat: p.nonFloat.map((m) => ({ name: m.name, base: m.base, tuned: m.tuned })),
  };
}

// ---------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------

export interface SparsityOptions {
  /** Rule and tolerances (default: η rule, η = 1e-3; abs tol 1e-5). */
  probe?: Partial<ProbeOptions>;
  /** Also apply the other rule and count disagreements per tensor. */
  compareProbes?: boolean;
  /** Worker threads (default: all cores); 1 runs in-process. Output does not depend on it. */
  threads?: number;
  shard?: ShardSpec | null;
  /** Only tensors whose name passes (applied before sharding). */
  filter?: (name: string) => boolean;
  /** Receives every primary-rule update mask (see the module header). */
  onMask?: (tunedIndex: number, name: string, mask: BitMask) => void;
  /** Progress in bytes read (both sides). */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** Entries per read chunk (multiple of 32; default 2^17 = 256 KiB of bf16 per side, so a chunk pair stays in L2 for the compare). */
  chunkElems?: number;
  /** Entries per parallel task (large tensors are split; default 2^24). */
  rangeElems?: number;
  /**
   * Locality profiles from the same read (../probes/locality-engine.ts): each tensor for which
   * `request` returns a request, and that every tuned model pairs, is one whole-tensor task
   * whose masks are profiled where they are read; `onProfile` gets the profile in tensor order.
   * `onMask` is not called for those tensors (their masks stay in the thread that read them).
   */
  profile?: { request: (name: string) => ProfileRequest | null; onProfile: (name: string, p: TensorProfile) => void };
  /** Start a worker only per this many bytes of work (default 64 MiB): starting one costs
   * ~0.1 s of CPU, more than small inputs take to compare. 0 always uses `threads`. */
  minBytesPerThread?: number;
}

interface Acc {
  rec: TensorRecord;
  tuned: number[];
  masks: (BitMask | null)[];
}

/**
 * Update sparsity of each tuned model against `base` (see the module header). Reads every
 * checkpoint once, in bounded memory; throws RlvrError for unreadable or malformed inputs
 * (tensor-level mismatches are reported in `pairing`, not thrown).
 */
export async function updateSparsity(baseSpec: string, tunedSpecs: readonly string[], o: SparsityOptions = {}): Promise<SparsityDoc> {
  if (tunedSpecs.length === 0) throw new UsageError('at least one tuned checkpoint is needed');
  const probe: ProbeOptions = { ...DEFAULT_PROBE, ...o.probe };
  if (probe.rule !== 'bf16' && probe.rule !== 'abs') throw new UsageError(`--probe must be bf16 or abs, got ${JSON.stringify(probe.rule)}`);
  if (!(probe.eta >= 0 && Number.isFinite(probe.eta))) throw new UsageError(`--eta must be a non-negative number, got ${probe.eta}`);
  if (!(probe.tol >= 0 && Number.isFinite(probe.tol))) throw new UsageError(`--tol must be a non-negative number, got ${probe.tol}`);
  const chunkElems = Math.max(32, Math.floor((o.chunkElems ?? 1 << 17) / 32) * 32);
  const rangeElems = Math.max(chunkElems, Math.floor((o.rangeElems ?? 1 << 24) / chunkElems) * chunkElems);
  const threads = Math.max(1, Math.floor(o.threads ?? defaultThreads()));
  const cfg: EngineConfig = { probe, compareProbes: o.compareProbes ?? false, chunkElems };
  const params: SparsityParams = {
    probe: probe.rule, eta: probe.eta, tol: probe.tol, compareProbes: cfg.compareProbes,
    bitwiseFastPath: probe.eta <= 2 ** -9, shard: o.shard && o.shard.count > 1 ? { index: o.shard.index, count: o.shard.count } : null,
  };

  // Workers for a large input start now, so their start-up (~0.2 s: modules, headers, kernels)
  // overlaps this thread's own (opening, fingerprints, pairing, tasks); unused ones are stopped.
  const perThread = o.minBytesPerThread ?? 64 * 2 ** 20;
  const workerFile = workerUrl('../run/sparsity-worker', import.meta.url);
  const workerData: SparsityWorkerData = { base: baseSpec, tuned: [...tunedSpecs], cfg, profile: !!o.profile };
  const guess = threads > 1 && perThread > 0 ? roughCheckpointBytes(baseSpec) * (1 + tunedSpecs.length) : 0;
  const early = Array.from({ length: Math.max(0, Math.min(threads, Math.floor(guess / perThread)) - 1) }, () => startWorker(workerFile, workerData));
  let base: TensorSource;
  try {
    base = openCheckpoint(baseSpec);
  } catch (e) {
    for (const w of early) void w.terminate();
    throw e;
  }
  const tuned: TensorSource[] = [];
  try {
    for (const t of tunedSpecs) tuned.push(openCheckpoint(t));
    const inputs = { base: describeInput(base), tuned: tuned.map(describeInput) };
    const floatNames = base.names.filter((n) => isFloatDType(base.info(n).dtype));
    for (const t of tuned) requireSharedTensors(base, t, floatNames);
    const pairings = tuned.map((t) => pairTensors(base, t));
    const pairing = pairings.map((p, i) => pairingRecord(i, p));

    // Work: every base tensor paired with at least one tuned model.
    const pairedIn = new Map<string, number[]>();
    pairings.forEach((p, ti) => { for (const pt of p.paired) { if (!pairedIn.has(pt.name)) pairedIn.set(pt.name, []); pairedIn.get(pt.name)!.push(ti); } });
    const items = base.names.filter((n) => pairedIn.has(n) && (!o.filter || o.filter(n))).map((n) => ({ name: n, bytes: base.info(n).byteLength }));
    const mine = selectShard(items, params.shard);

    const tasks: RangeTask[] = [];
    let totalBytes = 0;
    for (const it of mine) {
      const info = base.info(it.name);
      const tl = pairedIn.get(it.name)!.sort((a, b) => a - b);
      totalBytes += info.byteLength + tl.reduce((a, ti) => a + tuned[ti]!.info(it.name).byteLength, 0);
      const req = o.profile && tl.length === tuned.length ? o.profile.request(it.name) : null;
      if (req) {
        tasks.push({ name: it.name, start: 0, end: info.numel, tuned: tl, wantMask: false, profile: req });
        continue;
      }
      for (let s = 0; s < Math.max(1, info.numel); s += rangeElems) {
        tasks.push({ name: it.name, start: s, end: Math.min(info.numel, s + rangeElems), tuned: tl, wantMask: !!o.onMask });
      }
    }

    const records: TensorRecord[] = [];
    let acc: Acc | null = null;
    let bytesDone = 0;
    const onResult = (_i: number, r: RangeResult): void => {
      if (!acc || acc.rec.name !== r.name) {
        const info = base.info(r.name);
        const parsed = parseTensorName(r.name);
        acc = {
          rec: {
            name: r.name, kind: parsed.kind, layer: parsed.layer, linear: isLinearWeight(parsed, info.shape),
            shape: [...info.shape], numel: info.numel, baseDtype: info.dtype, nanBase: 0, infBase: 0,
            results: tunedSpecs.map(() => null),
          },
          tuned: r.tuned.map((t) => t.tuned),
          masks: r.tuned.map(() => (o.onMask && !r.profile ? new BitMask(info.shape) : null)),
        };
        for (const t of r.tuned) {
          acc.rec.results[t.tuned] = {
            tunedDtype: tuned[t.tuned]!.info(r.name).dtype, unchanged: 0, sparsity: NaN, bf16VisibleUnchanged: 0, bf16VisibleSparsity: NaN,
            nonFinite: 0, nanTuned: 0, infTuned: 0,
            absChangedBf16Unchanged: cfg.compareProbes ? 0 : null, bf16ChangedAbsUnchanged: cfg.compareProbes ? 0 : null,
          };
        }
      }
      const a: Acc = acc;
      const len = r.end - r.start;
      a.rec.nanBase += r.nanBase;
      a.rec.infBase += r.infBase;
      r.tuned.forEach((t, k) => {
        const res = a.rec.results[t.tuned]!;
        res.unchanged += len - t.changed;
        res.bf16VisibleUnchanged += len - t.bf16VisibleChanged;
        res.nonFinite += t.nonFinite;
        res.nanTuned += t.nanTuned;
        res.infTuned += t.infTuned;
        if (cfg.compareProbes) {
          res.absChangedBf16Unchanged! += t.absChangedBf16Unchanged;
          res.bf16ChangedAbsUnchanged! += t.bf16ChangedAbsUnchanged;
        }
        if (t.words) a.masks[k]!.words.set(t.words, r.start >>> 5);
      });
      bytesDone += len * base.info(r.name).byteLength / Math.max(1, a.rec.numel)
        + r.tuned.reduce((s, t) => s + (len * tuned[t.tuned]!.info(r.name).byteLength) / Math.max(1, a.rec.numel), 0);
      o.onProgress?.(Math.round(bytesDone), totalBytes);
      if (r.end >= a.rec.numel) {
        for (const res of a.rec.results) {
          if (!res) continue;
          res.sparsity = a.rec.numel > 0 ? res.unchanged / a.rec.numel : NaN;
          res.bf16VisibleSparsity = a.rec.numel > 0 ? res.bf16VisibleUnchanged / a.rec.numel : NaN;
        }
        records.push(a.rec);
        if (r.profile) o.profile!.onProfile(r.name, r.profile);
        else if (o.onMask) a.tuned.forEach((t, k) => o.onMask!(t, a.rec.name, a.masks[k]!));
        acc = null;
      }
    };

    const ctx = { scratch: createScratch(cfg), base, tuned, cfg };
    // The locality engine (and its imports) only when profile tasks exist: plain sparsity starts faster.
    const runTask = o.profile ? (await import('./locality-engine.js')).runRangeTask : compareRange;
    const useThreads = perThread > 0 ? Math.min(threads, Math.max(1, Math.floor(totalBytes / perThread))) : threads;
    if (useThreads <= 1 || tasks.length <= 1) {
      tasks.forEach((t, i) => onResult(i, runTask(ctx, t)));
    } else {
      // the main thread works too: threads − 1 workers
      const window = (o.onMask ? 4 : 32) * useThreads;
      const taskWork = (t: RangeTask): number => (t.end - t.start) * (1 + t.tuned.length);
      await runOrdered<RangeTask, RangeResult>(tasks, {
        worker: workerFile,
        workerData,
        started: early,
        threads: useThreads,
        // Results are small counts unless masks are wanted: then the window bounds the mask
        // words in flight (~rangeElems/8 bytes per tuned model and task).
        window,
        // Whole-tensor locality tasks differ ~35× in size; with 2 per worker the worker sat
        // idle ~10% of the time while the main thread finished a large tensor (CPU profile,
        // full-size five-run locality, 2 threads); with up to 8 queued (fewer near the end,
        // see runOrdered) ~0%, and the main thread ~1.5%.
        depth: o.profile ? 8 : 2,
        order: largestLastFirst(tasks, Math.min(window, 8 * useThreads), taskWork),
        size: o.profile ? taskWork : undefined,
        local: (t) => runTask(ctx, t),
        onResult,
      });
    }
    return buildSparsityDoc(params, inputs, pairing, records);
  } finally {
    for (const w of early) void w.terminate(); // those not used (runOrdered stops its own)
    base.close();
    for (const t of tuned) t.close();
  }
}

/**
 * Bytes of a checkpoint given as a file or a folder of *.safetensors (0 when it is anything
 * else, e.g. a Hugging Face id): only to decide early whether worker threads will pay.
 */
function roughCheckpointBytes(spec: string): number {
  try {
    const st = fs.statSync(spec);
    if (st.isFile()) return st.size;
    if (!st.isDirectory()) return 0;
    return fs.readdirSync(spec).filter((f) => f.endsWith('.safetensors')).reduce((a, f) => {
      try { return a + fs.statSync(path.join(spec, f)).size; } catch { return a; }
    }, 0);
  } catch {
    return 0;
  }
}

/**
 * A dispatch order: task order, except that the last `tail` tasks go largest first (stable),
 * so the pass does not end with one thread working off a large tensor while the others wait
 * (full-size five-run locality, 2 threads: the main thread idled ~0.1 s at the end).
 */
export function largestLastFirst<T>(tasks: readonly T[], tail: number, size: (t: T) => number): number[] {
  const order = tasks.map((_, i) => i);
  const from = Math.max(0, tasks.length - tail);
  const last = order.slice(from).sort((a, b) => size(tasks[b]!) - size(tasks[a]!) || a - b);
  return [...order.slice(0, from), ...last];
}

// ---------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------

/** Short label of a tuned model for table headers. */
export function tunedLabel(spec: string): string {
  const b = path.basename(spec.replace(/[\\/]+$/, ''));
  return b === '' ? spec : b;
}

/** Table 1: one row per tuned model. */
export function sparsityTable(doc: SparsityDoc): Table {
  const cmp = doc.params.compareProbes;
  const columns = ['tuned', 'sparsity', 'sparsity_linear', 'bf16_visible_sparsity', 'changed', 'entries', 'tensors', 'non_finite', 'skipped'];
  if (cmp) columns.push('abs_changed_bf16_unchanged', 'bf16_changed_abs_unchanged');
  const rows = doc.summary.map((s) => {
    const row: (string | number | null)[] = [
      tunedLabel(s.spec), s.overall.sparsity, s.linear.sparsity, s.overall.bf16VisibleSparsity,
      s.overall.n - s.overall.unchanged, s.overall.n, s.overall.tensors, s.nonFinite,
      s.skipped.missing + s.skipped.shapeMismatch + s.skipped.nonFloat,
    ];
    if (cmp) row.push(s.compare!.absChangedBf16Unchanged, s.compare!.bf16ChangedAbsUnchanged);
    return row;
  });
  return { columns, rows };
}

/** Sparsity per module kind (rows) and tuned model (columns). */
export function sparsityByKindTable(doc: SparsityDoc): Table {
  const kinds = MODULE_KINDS.filter((k) => doc.summary.some((s) => s.byKind.some((b) => b.kind === k)));
  return {
    columns: ['kind', ...doc.summary.map((s) => tunedLabel(s.spec))],
    rows: kinds.map((k) => [k, ...doc.summary.map((s) => s.byKind.find((b) => b.kind === k)?.sparsity ?? null)]),
  };
}

/** Sparsity per layer (rows) and tuned model (columns). */
export function sparsityByLayerTable(doc: SparsityDoc): Table {
  const layers = [...new Set(doc.summary.flatMap((s) => s.byLayer.map((b) => b.layer)))].sort((a, b) => a - b);
  return {
    columns: ['layer', ...doc.summary.map((s) => tunedLabel(s.spec))],
    rows: layers.map((l) => [l, ...doc.summary.map((s) => s.byLayer.find((b) => b.layer === l)?.sparsity ?? null)]),
  };
}

/** One row per (tensor, tuned model). */
export function sparsityTensorTable(doc: SparsityDoc): Table {
  const cmp = doc.params.compareProbes;
  const columns = ['tensor', 'kind', 'layer', 'linear', 'shape', 'numel', 'tuned', 'base_dtype', 'tuned_dtype', 'sparsity', 'unchanged', 'bf16_visible_sparsity', 'non_finite', 'nan_base', 'inf_base', 'nan_tuned', 'inf_tuned'];
  if (cmp) columns.push('abs_changed_bf16_unchanged', 'bf16_changed_abs_unchanged');
  const rows: (string | number | boolean | null)[][] = [];
  for (const t of doc.tensors) {
    t.results.forEach((r, i) => {
      if (!r) return;
      const row: (string | number | boolean | null)[] = [
        t.name, t.kind, t.layer, t.linear, t.shape.join('x'), t.numel, tunedLabel(doc.summary[i]!.spec), t.baseDtype, r.tunedDtype,
        r.sparsity, r.unchanged, r.bf16VisibleSparsity, r.nonFinite, t.nanBase, t.infBase, r.nanTuned, r.infTuned,
      ];
      if (cmp) row.push(r.absChangedBf16Unchanged, r.bf16ChangedAbsUnchanged);
      rows.push(row);
    });
  }
  return { columns, rows };
}

/** Lines about skipped tensors, dtype changes and non-finite values (for the terminal). */
export function sparsityNotes(doc: SparsityDoc): string[] {
  const lines: string[] = [];
  const few = (xs: string[]): string => (xs.length <= 5 ? xs.join(', ') : `${xs.slice(0, 5).join(', ')} … (+${xs.length - 5})`);
  doc.pairing.forEach((p, i) => {
    const who = tunedLabel(doc.summary[i]!.spec);
    if (p.missing.length) lines.push(`${who}: ${p.missing.length} base tensor(s) missing, skipped: ${few(p.missing)}`);
    if (p.extra.length) lines.push(`${who}: ${p.extra.length} extra tensor(s) not in the base, skipped: ${few(p.extra)}`);
    if (p.shapeMismatch.length) lines.push(`${who}: ${p.shapeMismatch.length} shape mismatch(es), skipped: ${few(p.shapeMismatch.map((m) => `${m.name} [${m.base.join('x')}] vs [${m.tuned.join('x')}]`))}`);
    if (p.nonFloat.length) lines.push(`${who}: ${p.nonFloat.length} non-float tensor(s), skipped: ${few(p.nonFloat.map((m) => m.name))}`);
    if (p.dtypeChanged.length) lines.push(`${who}: ${p.dtypeChanged.length} tensor(s) changed dtype (compared on decoded values): ${few(p.dtypeChanged.map((m) => `${m.name} ${m.base}→${m.tuned}`))}`);
  });
  doc.summary.forEach((s) => {
    if (s.nonFinite > 0) lines.push(`${tunedLabel(s.spec)}: ${s.nonFinite} entries are NaN/Inf on either side, in ${few(s.tensorsWithNonFinite)}`);
  });
  return lines;
}

/** The parameter line every report prints. */
export function sparsityParamsLine(doc: SparsityDoc): string {
  const p = doc.params;
  const rule = p.probe === 'bf16'
    ? `η rule |Δ| ≤ η·max(|w0|,|w+|), η = ${p.eta}${p.bitwiseFastPath ? ' (bf16 pairs: bitwise, exact by Prop. E.3)' : ''}`
    : `abs rule |Δ| ≤ ${p.tol}`;
  const extra = p.compareProbes ? `; compared with ${p.probe === 'bf16' ? `abs (tol ${p.tol})` : `η rule (η ${p.eta})`}` : '';
  const shard = p.shard ? `; shard ${p.shard.index}/${p.shard.count}` : '';
  return `probe: ${rule}${extra}${shard}; sparsity = unchanged / entries`;
}
