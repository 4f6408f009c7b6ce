/**
 * Cache maintenance: usage, least-recently-used pruning to a size, pruning by age, dry runs,
 * stale temp files; a cache hit refreshes an entry's last use. And the CLI around it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DecompositionCache } from '../src/run/cache.js';
import { cacheUsage, parseSize, pruneCache } from '../src/run/cache-maintenance.js';
import { runCli, tempDir } from './helpers.js';

const DAY = 86_400_000;

/** Four entries of 100, 200, 300, 400 bytes last used 4, 3, 2, 1 days before `now`, plus an old temp file. */
function fakeCache(now: number): string {
  const dir = tempDir();
  [100, 200, 300, 400].forEach((n, i) => {
    const f = path.join(dir, 'svd', `0${i}`, `${'ab'.repeat(32)}${i}.bin`);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, Buffer.alloc(n));
    const t = new Date(now - (4 - i) * DAY);
    fs.utimesSync(f, t, t);
  });
  const tmp = path.join(dir, 'svd', '00', '.x.bin.tmp-1-0');
  fs.writeFileSync(tmp, Buffer.alloc(50));
  const old = new Date(now - 2 * 3_600_000);
  fs.utimesSync(tmp, old, old);
  return dir;
}

test('cache usage and pruning: LRU to a size, by age, all, dry run; stale temp files go', () => {
  const now = Date.UTC(2026, 10, 26);
  const dir = fakeCache(now);
  assert.deepEqual({ ...cacheUsage(dir), dir: '' }, { dir: '', entries: 5, bytes: 1050, oldest: now - 4 * DAY, newest: now - 2 * 3_600_000 });
  // dry run: nothing removed
  const dry = pruneCache(dir, { maxBytes: 700, dryRun: true, now });
  assert.deepEqual(dry.removed.map((e) => e.bytes), [100, 200, 50]);
  assert.equal(cacheUsage(dir).entries, 5);
  // to 700 bytes: the stale temp file, then the two least recently used
  const r = pruneCache(dir, { maxBytes: 700, now });
  assert.deepEqual(r.removed.map((e) => e.bytes), [100, 200, 50]);
  assert.equal(r.kept.bytes, 700);
  assert.equal(cacheUsage(dir).bytes, 700);
  // by age: unused for more than 1.5 days
  assert.deepEqual(pruneCache(dir, { olderThanDays: 1.5, now }).removed.map((e) => e.bytes), [300]);
  assert.deepEqual(pruneCache(dir, { all: true, now }).removed.map((e) => e.bytes), [400]);
  assert.equal(cacheUsage(dir).entries, 0);
  assert.deepEqual({ ...cacheUsage(path.join(dir, 'missing')), dir: '' }, { dir: '', entries: 0, bytes: 0, oldest: null, newest: null });
});

test('a cache hit refreshes the entry (LRU order follows use, not creation)', () => {
  const dir = tempDir();
  const c = new DecompositionCache(dir);
  const key = { tensorSha256: 'a'.repeat(64), name: 'w', dtype: 'BF16', shape: [2, 2], k: 1, method: 'exact', settings: {} };
  const d = { U: { rows: 2, cols: 1, data: new Float64Array([1, 0]) }, S: new Float64Array([2]), V: { rows: 2, cols: 1, data: new Float64Array([0, 1]) }, basis: null, sigmaNext: null, info: { iterations: 0, residual: 0, angleErrorBound: 0, converged: true, method: 'exact' } };
  c.put(key, d);
  const file = c.fileFor(key)!;
  const old = new Date(Date.now() - 10 * DAY);
  fs.utimesSync(file, old, old);
  assert.ok(c.get(key), 'hit');
  assert.ok(Date.now() - fs.statSync(file).mtimeMs < DAY, 'mtime refreshed by the hit');
});

test('parseSize and the CLI: usage line, prune needs a limit (exit 2), --json', async () => {
  assert.equal(parseSize('2G'), 2 * 2 ** 30);
  assert.equal(parseSize('500M'), 500 * 2 ** 20);
  assert.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseSize('123'), 123);
  assert.equal(parseSize('lots'), null);
  const dir = fakeCache(Date.now());
  const show = await runCli(['cache', '--dir', dir]);
  assert.equal(show.code, 0);
  assert.match(show.stdout, /: 5 entries, /);
  const bad = await runCli(['cache', '--dir', dir, '--prune']);
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  const badSize = await runCli(['cache', '--dir', dir, '--prune', '--max-size', 'lots']);
  assert.equal(badSize.code, 2);
  const j = await runCli(['cache', '--dir', dir, '--prune', '--max-size', '0', '--json']);
  assert.equal(j.code, 0, j.out);
  assert.equal((JSON.parse(j.stdout) as { removed: number }).removed, 5);
});
