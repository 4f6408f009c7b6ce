/** `rlvr-lens cache`: size of the decomposition cache, and pruning it (src/run/cache-maintenance.ts). */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { defaultCacheDir } from '../../run/cache.js';
import { cacheUsage, parseSize, pruneCache } from '../../run/cache-maintenance.js';
import { nonNegativeFlag } from '../options.js';

function gib(b: number): string { return b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`; }
function day(t: number | null): string { return t === null ? '-' : new Date(t).toISOString().slice(0, 10); }

export function register(program: Command): void {
  program
    .command('cache')
    .description('Show the base-decomposition cache (entries, size, last use) or prune it: least recently used first, down to --max-size, or entries unused for --older-than days')
    .option('--dir <dir>', 'cache folder (default $RLVR_CACHE, $XDG_CACHE_HOME/rlvr-lens or ~/.cache/rlvr-lens)')
    .option('--prune', 'remove entries (needs --max-size, --older-than or --all)')
    .option('--max-size <size>', 'keep at most this much, e.g. 2G, 500M')
    .option('--older-than <days>', 'remove entries not used for this many days')
    .option('--all', 'remove every entry')
    .option('--dry-run', 'with --prune: list what would be removed, remove nothing')
    .option('--json', 'print JSON')
    .action((o: { dir?: string; prune?: boolean; maxSize?: string; olderThan?: string; all?: boolean; dryRun?: boolean; json?: boolean }) => {
      const dir = o.dir ?? defaultCacheDir();
      if (!o.prune) {
        if (o.maxSize !== undefined || o.olderThan !== undefined || o.all) throw new UsageError('--max-size, --older-than and --all go with --prune');
        const u = cacheUsage(dir);
        if (o.json) { process.stdout.write(JSON.stringify(u, null, 2) + '\n'); return; }
        process.stdout.write(`${u.dir}: ${u.entries} entries, ${gib(u.bytes)}; last used ${day(u.oldest)} … ${day(u.newest)}\n`);
        return;
      }
      const maxBytes = o.maxSize === undefined ? undefined : parseSize(o.maxSize);
      if (maxBytes === null) throw new UsageError(`--max-size must be a size like 2G or 500M, got ${JSON.stringify(o.maxSize)}`);
      const olderThanDays = o.olderThan === undefined ? undefined : nonNegativeFlag('--older-than', o.olderThan);
      if (maxBytes === undefined && olderThanDays === undefined && !o.all) throw new UsageError('--prune needs --max-size, --older-than or --all');
      const r = pruneCache(dir, { maxBytes, olderThanDays, all: !!o.all, dryRun: !!o.dryRun });
      if (o.json) { process.stdout.write(JSON.stringify({ dryRun: !!o.dryRun, removed: r.removed.length, removedBytes: r.removed.reduce((a, e) => a + e.bytes, 0), kept: r.kept }, null, 2) + '\n'); return; }
      const freed = r.removed.reduce((a, e) => a + e.bytes, 0);
      process.stdout.write(`${o.dryRun ? 'would remove' : 'removed'} ${r.removed.length} entries (${gib(freed)}); kept ${r.kept.entries} (${gib(r.kept.bytes)}) in ${dir}\n`);
    });
}
