/** `rlvr-lens locality`: where updates land across runs from one base (paper §2.2, Table 2, Fig. 2; SPEC §2, §4). */
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { parseTensorName } from '../../model/names.js';
import { LOCALITY_FORMULAS, localityDocument, localityTables, runLocalityPass, tensorSelection } from '../../probes/locality.js';
import { toJson, toText, writeOutputs } from '../../report/output.js';
import { addProbeOptions, intFlag, probeFromFlags, regexFlag } from '../options.js';
import { createProgress } from '../progress.js';

interface Opts {
  base: string;
  tuned: string[];
  layer?: string;
  out?: string;
  allTensors?: boolean;
  match?: string;
  bins: string;
  probe: string;
  eta: string;
  tol: string;
  threads?: string;
  consensus?: string;
  pool: string;
  full?: boolean;
  figures: boolean;
  json?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  addProbeOptions(program
    .command('locality')
    .description('Cross-run locality of updates from one base: R×R Jaccard of update masks per tensor/layer/module vs the Bernoulli and magnitude-matched baselines (Table 2), consensus maps, change rate per binade of |W0|')
    .requiredOption('--base <checkpoint>', 'base checkpoint (file, folder, sharded folder, or HF cache id)')
    .requiredOption('--tuned <checkpoints...>', 'two or more tuned runs from that base (each read once)')
    .option('--layer <L>', 'decoder layer for the Table-2 view and consensus maps (default: the middle layer)')
    .option('--out <dir>', 'write locality.json, sparsity.json, CSV/Markdown tables and figures/ (PNG + CSV) here')
    .option('--all-tensors', 'every tensor, not only 2-D linear weights')
    .option('--match <regex>', 'only tensors whose name matches')
    .option('--bins <n>', 'equal-count |W0| bins of the magnitude-matched baseline', '20'), 'bf16 (η rule) or abs (|Δ| ≤ tol)')
    .option('--threads <n>', 'worker threads of the mask pass (default: all cores)')
    .option('--consensus <regex>', 'tensors whose consensus map to draw (default: the --layer tensors)')
    .option('--pool <n>', 'pool consensus maps to at most n×n cells (mean over blocks)', '512')
    .option('--full', 'consensus maps at full resolution, one cell per entry (over 8192 per side still pooled; the caption says how)')
    .option('--no-figures', 'skip the PNG figures')
    .option('--json', 'print the JSON document instead of tables')
    .option('--quiet', 'no progress bar')
    .action(async (o: Opts) => {
      const probe = probeFromFlags(o);
      const numBins = intFlag('--bins', o.bins, 1)!;
      if (numBins > 255) throw new UsageError('--bins must be at most 255');
      const threads = intFlag('--threads', o.threads, 1);
      const match = regexFlag('--match', o.match);
      const consensusRe = regexFlag('--consensus', o.consensus);
      const pool = intFlag('--pool', o.pool, 1)!;
      if (o.tuned.length < 2) throw new UsageError('--tuned needs at least two checkpoints');
      // The table layer: asked for, else the middle of the layers the selection covers.
      const { names, layers, middle } = tensorSelection(o.base, { all: o.allTensors, match });
      const layer = intFlag('--layer', o.layer, 0) ?? middle;
      if (layer !== null && !layers.includes(layer)) throw new UsageError(`--layer ${layer}: no selected tensor in that layer (layers ${layers[0]}..${layers[layers.length - 1]})`);
      const progress = createProgress(names.length, 'locality', { quiet: o.quiet });
      const r = await runLocalityPass(o.base, o.tuned, {
        probe, numBins, allTensors: !!o.allTensors, match, threads,
        consensusFor: o.figures && o.out ? (n) => (consensusRe ? consensusRe.test(n) : parseTensorName(n).layer === layer) : undefined,
        consensusMaxSize: o.full ? 0 : pool,
        onTensor: (n) => progress.tick(1, n),
      });
      progress.stop();
      const doc = localityDocument(r, layer);
      const tables = localityTables(r, layer);
      const written: string[] = [];
      if (o.out) {
        written.push(...writeOutputs(o.out, 'locality', doc, tables));
        if (r.sparsity) written.push(...writeOutputs(o.out, 'sparsity', r.sparsity));
        // the figure code (and its canvas addon) loads only when figures are drawn
        if (o.figures) written.push(...(await import('../../report/figures/probes.js')).writeLocalityFigures(path.join(o.out, 'figures'), r, layer));
      }
      if (o.json) { process.stdout.write(toJson(doc)); return; }
      const lines: string[] = [
        `locality of ${r.runs.length} runs vs ${r.base}: ${r.tensors.length} tensors (${r.params.tensors}), probe ${probe.rule}${probe.rule === 'bf16' ? ` η=${probe.eta}` : ` tol=${probe.tol}`}, ${numBins} |W0| bins`,
        `  Jaccard: ${LOCALITY_FORMULAS.jaccard}`,
        `  Bernoulli baseline: ${LOCALITY_FORMULAS.bernoulli}`,
        `  magnitude-matched baseline: ${LOCALITY_FORMULAS.magnitudeMatched}`,
        `  ${LOCALITY_FORMULAS.mean}`,
        '',
      ];
      if (tables.layer) lines.push(`layer ${layer} (Table 2)`, toText(tables.layer));
      lines.push('all layers, per module', toText(tables.kinds!));
      if (r.incomplete.length > 0) lines.push(`skipped ${r.incomplete.length} tensor(s) missing or mismatched in some run: ${r.incomplete.slice(0, 5).join(', ')}${r.incomplete.length > 5 ? ', ...' : ''}`, '');
      if (o.out) lines.push(`wrote ${written.length} files to ${o.out} (locality.json, sparsity.json, tables${o.figures ? ', figures/' : ''})`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
