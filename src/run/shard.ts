/**
 * Deterministic sharding of tensor work across machines (`--shard i/N`, Slurm array or
 * Kubernetes Indexed Job). Tensors are assigned greedily by byte size (largest first, ties
 * by name) to the least-loaded shard, so shards are balanced and every shard computes the
 * same assignment from the same base checkpoint.
 */
import { UsageError } from '../errors.js';
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
