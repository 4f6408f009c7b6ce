/** `rlvr-lens demo` (and `npm start`): the full analysis of the shipped demo checkpoints, ending in report.html. */
import * as os from 'node:os';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { runDemo } from '../../report/html/demo.js';

export const DEFAULT_DEMO_OUT = 'rlvr-lens-demo';

export function register(program: Command): void {
  program
    .command('demo')
    .description(`Analyse the small checkpoints shipped with rlvr-lens (base, SFT, RL runs, checkpoints over training, an intervened base) and write an interactive report (default folder ./${DEFAULT_DEMO_OUT}/)`)
    .option('--out <dir>', 'output folder', DEFAULT_DEMO_OUT)
    .option('--threads <n>', 'worker threads (default: 2)')
    .option('-k, --rank <k>', 'rank k for principal weights and subspaces (default 16: the demo matrices are 64–128 wide)')
    .option('--quiet', 'print only the report path')
    .action(async (o: { out: string; threads?: string; rank?: string; quiet?: boolean }) => {
      const k = o.rank === undefined ? undefined : Number(o.rank);
      if (k !== undefined && (!Number.isInteger(k) || k < 1)) throw new UsageError(`--rank must be a positive integer, got ${JSON.stringify(o.rank)}`);
      const threads = o.threads === undefined ? Math.min(2, os.cpus().length) : Number(o.threads);
      if (!Number.isInteger(threads) || threads < 1) throw new UsageError(`--threads must be a positive integer, got ${JSON.stringify(o.threads)}`);
      const t0 = Date.now();
      const say = (m: string): void => { if (!o.quiet) process.stderr.write(`rlvr-lens demo: ${m}\n`); };
      const r = await runDemo({ out: o.out, threads, ...(k !== undefined ? { k } : {}), onEvent: say });
      if (!o.quiet) {
        process.stdout.write(`demo checkpoints: ${r.set.source}\n`);
        for (const l of r.summary) process.stdout.write(`${l}\n`);
        process.stdout.write(`analysis in ${((Date.now() - t0) / 1000).toFixed(1)} s; data files in ${path.resolve(r.out)}\n`);
      }
      process.stdout.write(`report: ${path.resolve(r.report)} (${(r.reportBytes / 1024).toFixed(0)} KiB; open it in a browser, it needs no network)\n`);
    });
}
