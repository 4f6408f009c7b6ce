/** `rlvr-lens dynamics`: row/column update ratios of one run over training (paper §2.3, Figs. 3, 12–14; SPEC §2). */
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { parseTensorName } from '../../model/names.js';
import { DYNAMICS_DEFINITIONS, dynamicsDocument, dynamicsTables, resolveSteps, runDynamicsPass } from '../../probes/dynamics.js';
import { tensorSelection } from '../../probes/locality.js';
import { toJson, toText, writeOutputs } from '../../report/output.js';
import { createProgress } from '../progress.js';
import { addProbeOptions, intFlag, probeFromFlags, regexFlag, stepsFlag } from '../options.js';

interface Opts {
  base: string;
  checkpoints: string[];
  steps?: string;
  layer?: string;
  profiles?: string;
  out?: string;
  allTensors?: boolean;
  match?: string;
  probe: string;
  eta: string;
  tol: string;
  threads?: string;
  figures: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  addProbeOptions(program
    .command('dynamics')
    .description('Update ratios over training for one run: row ratios ρ_i(t) and column ratios κ_j(t) per tensor (smoothed, window 3) with head boundaries, sparsity over steps, and how stable the profiles are (Spearman between steps)')
    .requiredOption('--base <checkpoint>', 'base checkpoint (its config.json gives the head layout)')
    .requiredOption('--checkpoints <checkpoints...>', "one run's checkpoints in step order (each read once)")
    .option('--steps <list>', 'step numbers, comma-separated (default: parsed from names like checkpoint-100, step_100, global_step100)')
    .option('--layer <L>', 'layer whose tensors get full profiles, curves and figures (default: the middle layer)')
    .option('--profiles <regex>', 'tensors that get full profiles instead of --layer')
    .option('--out <dir>', 'write dynamics.json, CSV/Markdown tables and figures/ (PNG + CSV) here')
    .option('--all-tensors', 'every tensor, not only 2-D linear weights')
    .option('--match <regex>', 'only tensors whose name matches'), 'bf16 (η rule) or abs (|Δ| ≤ tol)')
    .option('--threads <n>', 'worker threads of the mask pass (default: all cores)')
    .option('--no-figures', 'skip the PNG figures')
    .option('--json', 'print the JSON document instead of tables')
    .option('--quiet', 'no progress bar')
    .action(async (o: Opts) => {
      const probe = probeFromFlags(o);
      const threads = intFlag('--threads', o.threads, 1);
      const match = regexFlag('--match', o.match);
      const profilesRe = regexFlag('--profiles', o.profiles);
      const steps = resolveSteps(o.checkpoints, stepsFlag(o.steps));
      const { names, layers, middle } = tensorSelection(o.base, { all: o.allTensors, match });
      const layer = intFlag('--layer', o.layer, 0) ?? middle;
      if (layer !== null && !profilesRe && !layers.includes(layer)) throw new UsageError(`--layer ${layer}: no selected tensor in that layer`);
      const progress = createProgress(names.length, 'dynamics', { quiet: o.quiet });
      const d = await runDynamicsPass(o.base, o.checkpoints, steps, {
        probe, allTensors: !!o.allTensors, match, threads,
        profilesFor: (n) => (profilesRe ? profilesRe.test(n) : parseTensorName(n).layer === layer),
        onTensor: (n) => progress.tick(1, n),
      });
      progress.stop();
      const doc = dynamicsDocument(d);
      const tables = dynamicsTables(d);
      const written: string[] = [];
      if (o.out) {
        written.push(...writeOutputs(o.out, 'dynamics', doc, tables));
        if (o.figures) written.push(...(await import('../../report/figures/probes.js')).writeDynamicsFigures(path.join(o.out, 'figures'), d));
      }
      if (o.json) { process.stdout.write(toJson(doc)); return; }
      const lines = [
        `dynamics of ${d.checkpoints.length} checkpoints (steps ${d.steps.join(', ')}) vs ${d.base}: ${d.tensors.length} tensors, probe ${probe.rule}`,
        `  ${DYNAMICS_DEFINITIONS.rowRatio}; ${DYNAMICS_DEFINITIONS.colRatio}`,
        `  smoothing: ${DYNAMICS_DEFINITIONS.smoothing}`,
        `  stability: ${DYNAMICS_DEFINITIONS.stability}`,
        `  heads: ${d.heads ? `head_dim ${d.heads.headDim}, ${d.heads.numHeads} query / ${d.heads.numKvHeads} kv heads` : 'no config.json next to the base: no head boundaries'}`,
        '',
        'sparsity over steps', toText(tables.sparsity!),
        'per tensor', toText(tables.tensors!),
      ];
      if (d.incomplete.length > 0) lines.push(`skipped ${d.incomplete.length} tensor(s) missing or mismatched in some checkpoint`, '');
      if (o.out) lines.push(`wrote ${written.length} files to ${o.out} (dynamics.json, tables${o.figures ? ', figures/' : ''})`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
