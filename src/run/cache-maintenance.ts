/**
 * Size and pruning of the decomposition cache (./cache.ts): the cache only grows (about
 * 0.6–1 GB per 1.5B base at k = 64), so users list it and drop the least recently used
 * entries (an entry's mtime is refreshed on every hit) down to a size or an age.
 * Only `svd/` entries and temp files of interrupted writes (over an hour old) are touched.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fromSystemError } from '../errors.js';

export interface CacheEntry { file: string; bytes: number; lastUsed: number }

export interface CacheUsage {
  dir: string;
  entries: number;
  bytes: number;
  /** Oldest and newest last use (ms since the epoch), null when empty. */
  oldest: number | null;
  newest: number | null;
}

/** Every entry under DIR/svd (a missing folder is an empty cache). */
export function cacheEntries(dir: string): CacheEntry[] {
  const root = path.join(dir, 'svd');
  const out: CacheEntry[] = [];
  let subs: string[];
  try { subs = fs.readdirSync(root); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw fromSystemError(e, root, 'read');
  }
  for (const sub of subs.sort()) {
    const d = path.join(root, sub);
    let names: string[];
    try { names = fs.readdirSync(d); } catch { continue; }
    for (const n of names.sort()) {
      if (!n.endsWith('.bin') && !n.includes('.tmp-')) continue;
      const file = path.join(d, n);
      try { const st = fs.statSync(file); if (st.isFile()) out.push({ file, bytes: st.size, lastUsed: st.mtimeMs }); } catch { /* vanished */ }
    }
  }
  return out;
}

export function cacheUsage(dir: string): CacheUsage {
  const e = cacheEntries(dir);
  return {
    dir, entries: e.length, bytes: e.reduce((a, x) => a + x.bytes, 0),
    oldest: e.length ? Math.min(...e.map((x) => x.lastUsed)) : null,
    newest: e.length ? Math.max(...e.map((x) => x.lastUsed)) : null,
  };
}

export interface PruneOptions {
  /** Keep at most this many bytes (least recently used removed first). */
  maxBytes?: number;
  /** Remove entries not used for this many days. */
  olderThanDays?: number;
  /** Remove everything. */
  all?: boolean;
  /** Report what would go, remove nothing. */
  dryRun?: boolean;
  /** "now" for the age test (tests). */
  now?: number;
}

/** Removes entries per `o`; returns what was (or, with dryRun, would be) removed. */
export function pruneCache(dir: string, o: PruneOptions): { removed: CacheEntry[]; kept: CacheUsage } {
  const entries = cacheEntries(dir).sort((a, b) => a.lastUsed - b.lastUsed || (a.file < b.file ? -1 : 1));
  const now = o.now ?? Date.now();
  const drop = new Set<CacheEntry>();
  for (const e of entries) {
    const staleTemp = e.file.includes('.tmp-') && now - e.lastUsed > 3_600_000; // an interrupted write, not a running one
    if (o.all || staleTemp) drop.add(e);
    else if (o.olderThanDays !== undefined && now - e.lastUsed > o.olderThanDays * 86_400_000) drop.add(e);
  }
  if (o.maxBytes !== undefined) {
    let total = entries.filter((e) => !drop.has(e)).reduce((a, e) => a + e.bytes, 0);
    for (const e of entries) { // oldest first
      if (total <= o.maxBytes) break;
      if (drop.has(e)) continue;
      drop.add(e);
      total -= e.bytes;
    }
  }
  const removed = entries.filter((e) => drop.has(e));
  if (!o.dryRun) {
    for (const e of removed) {
      try { fs.rmSync(e.file, { force: true }); } catch (err) { throw fromSystemError(err, e.file, 'remove'); }
    }
  }
  const keptEntries = entries.filter((e) => !drop.has(e));
  return {
    removed,
    kept: {
      dir, entries: keptEntries.length, bytes: keptEntries.reduce((a, e) => a + e.bytes, 0),
      oldest: keptEntries.length ? keptEntries[0]!.lastUsed : null, newest: keptEntries.length ? keptEntries[keptEntries.length - 1]!.lastUsed : null,
    },
  };
}

/** "500M", "2G", "1.5GiB", "123" (bytes) → bytes. */
export function parseSize(v: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(v);
  if (!m) return null;
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * mult);
}
