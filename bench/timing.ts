/** Timing helpers shared by the benchmarks: CPU time of child processes and repeated runs. */
import type { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** CPU seconds (user + system) of waited-for children, from /proc (Linux); NaN elsewhere. */
export function childrenCpu(): number {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[13]) + Number(f[14])) / 100; // cutime + cstime, USER_HZ = 100
  } catch { return NaN; }
}

export interface Timing { min: number; max: number; cpu: number }

/** Min and max wall time of n runs after a warm-up (page cache, JIT caches), and the min CPU time (user + sys, threads included). */
export function repeat(n: number, fn: () => void): Timing {
  fn();
  const ts: number[] = [], cs: number[] = [];
  for (let i = 0; i < n; i++) {
    const c0 = childrenCpu();
    const t = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t) / 1e9);
    cs.push(childrenCpu() - c0);
  }
  return { min: Math.min(...ts), max: Math.max(...ts), cpu: Math.min(...cs) };
}

/** Throws when a child process failed, with the start of its stderr. */
export function must(r: ReturnType<typeof spawnSync>, what: string): void {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${String(r.stderr).slice(0, 500)}`);
}
