/** `rlvr-lens analyze`: every probe stage over a base and tuned checkpoints into one folder (src/run/analyze.ts). */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { STAGES, analyze } from '../../run/analyze.js';
import { type GeometryFlags, geometryFlags, geometryOptions } from './spectrum.js';
import { stepsFlag } from '../options.js';

export function register(program: Command): void {
  geometryFlags(program
    .command('analyze')
    .description(`Run every analysis stage (${STAGES.map((s) => s.name).join(', ')}) over a base and tuned checkpoints; writes DIR/<stage>.json (+ CSV/Markdown) and DIR/manifest.json`))
    .option('--checkpoints <checkpoints...>', 'checkpoints of one run over training time (for the dynamics stage)')
    .option('--steps <list>', 'their step numbers, comma-separated (default: parsed from names like checkpoint-100, step_100, global_step100)')
    .option('--stages <list>', `only these stages, comma-separated (${STAGES.map((s) => s.name).join(', ')})`)
    .action(async (o: GeometryFlags & { checkpoints?: string[]; steps?: string; stages?: string }) => {
      if (!o.out) throw new UsageError('analyze needs --out DIR');
      const g = geometryOptions(o);
      const steps = stepsFlag(o.steps);
      if (steps && steps.length !== (o.checkpoints ?? []).length) throw new UsageError(`--steps has ${steps.length} values for ${(o.checkpoints ?? []).length} checkpoints`);
      const r = await analyze(o.base, o.tuned, o.out, {
        k: g.k!, alpha: g.alpha!, layers: typeof g.layers === 'string' ? g.layers : null, modules: g.modules ? [...g.modules] : null,
        threads: g.threads!, cacheDir: g.cacheDir, exact: g.exact === true ? '.*' : g.exact instanceof RegExp ? g.exact.source : null,
        fullSpectrum: !!g.fullSpectrum, probe: { rule: g.probe!.rule!, eta: g.probe!.eta!, tol: g.probe!.tol! }, shard: g.shard ?? null, seed: g.seed!, method: g.method ?? 'auto',
        stages: o.stages ? o.stages.split(',').map((s) => s.trim()).filter(Boolean) : null,
      }, { checkpoints: o.checkpoints ?? [], steps, log: o.quiet ? undefined : (m) => { if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${m}`); } });
      if (!o.quiet && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      if (o.json) { process.stdout.write(JSON.stringify(r, null, 2) + '\n'); return; }
      const lines = r.stages.map((s) => `${s.name.padEnd(10)} ${s.skipped ? `skipped: ${s.skipped}` : s.files.filter((f) => f.endsWith('.json')).join(', ')}`);
      lines.push(`wrote ${r.files.length} files to ${o.out} (manifest.json lists inputs, parameters and files)`);
      if (r.report) lines.push(`report: ${r.report}`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
