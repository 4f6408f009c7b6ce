/**
 * Deterministic sharding of tensor work across machines (`--shard i/N`, Slurm array or
 * Kubernetes Indexed Job). Tensors are assigned greedily by byte size (largest first, ties
 * by name) to the least-loaded shard, so shards are balanced and every shard computes the
 * same assignment from the same base checkpoint. `joinShardOutputs` checks and joins the outputs.
 */
import { RlvrError, UsageError } from '../errors.js';
import { compareTensorNames } from '../model/names.js';

export interface ShardSpec {
  /** 0-based shard index. */
  index: number;
  count: number;
}

/** Parses `i/N` (0-based i) or `auto` (SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX with N). */
export function parseShard(spec: string | undefined, env: NodeJS.ProcessEnv = process.env): ShardSpec | null {
  if (spec === undefined) return null;
  let m = /^(\d+)\/(\d+)$/.exec(spec);
  if (spec.startsWith('auto')) {
    const count = Number(spec.slice(5) || env.SLURM_ARRAY_TASK_COUNT || env.RLVR_SHARD_COUNT);
    const idx = env.SLURM_ARRAY_TASK_ID ?? env.JOB_COMPLETION_INDEX;
    if (idx === undefined || !Number.isInteger(count) || count <= 0) {
      throw new UsageError('--shard auto needs SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, and the shard count (auto/N, SLURM_ARRAY_TASK_COUNT or RLVR_SHARD_COUNT)');
    }
    const minId = Number(env.SLURM_ARRAY_TASK_MIN ?? 0);
    m = /^(\d+)\/(\d+)$/.exec(`${Number(idx) - minId}/${count}`);
  }
  if (!m) throw new UsageError(`--shard must be i/N (0-based i < N) or auto[/N], got ${JSON.stringify(spec)}`);
  const index = Number(m[1]), count = Number(m[2]);
  if (count <= 0 || index >= count) throw new UsageError(`--shard ${spec}: index must be in 0..${count - 1}`);
  return { index, count };
}

/** The subset of `items` (name + byte size) that shard `s` owns, in natural name order. */
export function selectShard<T extends { name: string; bytes: number }>(items: readonly T[], s: ShardSpec | null): T[] {
  if (!s || s.count === 1) return [...items].sort((a, b) => compareTensorNames(a.name, b.name));
  const order = [...items].sort((a, b) => b.bytes - a.bytes || compareTensorNames(a.name, b.name));
  const load = new Array<number>(s.count).fill(0);
  const mine: T[] = [];
  for (const it of order) {
    let best = 0;
    for (let j = 1; j < s.count; j++) if (load[j]! < load[best]!) best = j;
    load[best]! += Math.max(1, it.bytes);
    if (best === s.index) mine.push(it);
  }
  return mine.sort((a, b) => compareTensorNames(a.name, b.name));
}

/** What a `--shard i/N` output document carries that merging checks. */
export interface ShardOutput<T extends { name: string }> {
  kind: string;
  schema: unknown;
  params: { shard?: ShardSpec | null };
  inputs: unknown;
  tensors: readonly T[];
}

/**
 * Checks that `docs` are one complete set of `--shard i/N` outputs of `kind` (same schema and
 * shard count, every shard 0..N-1 exactly once, identical parameters apart from the shard,
 * identical inputs, and identical `same` fields, given as [field, what it is]) and returns
 * their tensors in document order, each name once. Throws RlvrError naming the offending
 * document (`label(i)`), or UsageError listing the missing shards.
 */
export function joinShardOutputs<T extends { name: string }>(
  docs: readonly ShardOutput<T>[], kind: string, label: (i: number) => string, same: readonly (readonly [string, string])[] = [],
): T[] {
  if (docs.length === 0) throw new UsageError('nothing to merge');
  const stable = (x: unknown): string => JSON.stringify(x);
  const first = docs[0]!;
  docs.forEach((d, i) => {
    if (!d || d.kind !== kind || !Array.isArray(d.tensors) || !d.params) throw new RlvrError(`not a ${kind} document`, { file: label(i), code: 'E_MERGE_KIND' });
    if (d.schema !== first.schema) throw new RlvrError(`schema ${String(d.schema)} differs from ${String(first.schema)} in ${label(0)}`, { file: label(i), code: 'E_MERGE_SCHEMA' });
  });
  const count = first.params.shard?.count ?? 1;
  const seen = new Set<number>();
  docs.forEach((d, i) => {
    const s = d.params.shard;
    if ((s?.count ?? 1) !== count) throw new RlvrError(`shard count ${s?.count ?? 1} differs from ${count} in ${label(0)}`, { file: label(i), code: 'E_MERGE_SHARDS' });
    const idx = s?.index ?? 0;
    if (seen.has(idx)) throw new RlvrError(`shard ${idx}/${count} given twice`, { file: label(i), code: 'E_MERGE_SHARDS' });
    seen.add(idx);
    const { shard: _a, ...pa } = d.params, { shard: _b, ...pb } = first.params;
    if (stable(pa) !== stable(pb)) throw new RlvrError(`parameters differ from ${label(0)}`, { file: label(i), code: 'E_MERGE_PARAMS' });
    if (stable(d.inputs) !== stable(first.inputs)) throw new RlvrError(`inputs (paths or fingerprints) differ from ${label(0)}`, { file: label(i), code: 'E_MERGE_INPUTS' });
    for (const [field, what] of same) {
      const get = (x: object): unknown => (x as Record<string, unknown>)[field];
      if (stable(get(d)) !== stable(get(first))) throw new RlvrError(`${what} differs from ${label(0)}`, { file: label(i), code: `E_MERGE_${field.toUpperCase()}` });
    }
  });
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  if (missing.length > 0) throw new UsageError(`shards missing: ${missing.map((i) => `${i}/${count}`).join(', ')}`);
  const names = new Set<string>();
  const tensors: T[] = [];
  docs.forEach((d, i) => {
    for (const t of d.tensors) {
      if (names.has(t.name)) throw new RlvrError(`tensor ${t.name} appears in two shards`, { file: label(i), code: 'E_MERGE_DUPLICATE' });
      names.add(t.name);
      tensors.push(t);
    }
  });
  return tensors;
}
