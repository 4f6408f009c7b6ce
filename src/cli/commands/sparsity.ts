/** `rlvr-lens sparsity`: update sparsity of one or more tuned checkpoints against a base (SPEC §1). */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import {
  sparsityByKindTable, sparsityByLayerTable, sparsityNotes, sparsityParamsLine, sparsityTable, sparsityTensorTable,
  updateSparsity,
} from '../../probes/sparsity.js';
import { toJson, toText, writeOutputs } from '../../report/output.js';
import { defaultThreads } from '../../run/pool.js';
import { parseShard } from '../../run/shard.js';
import { addProbeOptions, intFlag, probeFromFlags } from '../options.js';
import { createProgress } from '../progress.js';

interface Opts {
  base: string;
  tuned: string[];
  probe: string;
  eta: string;
  tol: string;
  compareProbes?: boolean;
  threads?: string;
  shard?: string;
  json?: boolean;
  out?: string;
  perTensor?: boolean;
  quiet?: boolean;
}

export function register(program: Command): void {
  addProbeOptions(program
    .command('sparsity')
    .description('Update sparsity (fraction of entries left unchanged) of tuned checkpoints vs a base: overall, linear weights, per module kind, per layer, per tensor (paper §2.1, Table 1)')
    .requiredOption('--base <checkpoint>', 'base checkpoint: .safetensors file, folder, sharded folder, or HF cache id org/name[@rev]')
    .requiredOption('--tuned <checkpoints...>', 'one or more fine-tuned checkpoints (the base is read once)'), 'bf16 (η rule, bitwise for bf16 pairs) or abs (|Δ| ≤ tol, Mukherjee et al.)')
    .option('--compare-probes', 'also apply the other rule; count per tensor the entries the two classify differently')
    .option('--threads <n>', `worker threads (default: all cores, here ${defaultThreads()})`)
    .option('--shard <i/N>', 'process shard i of N (0-based) of the tensors; merge outputs with `rlvr-lens merge`')
    .option('--json', 'print the JSON document (docs/schema-sparsity.md) instead of tables')
    .option('--out <dir>', 'write sparsity.json and CSV + Markdown tables to this folder (atomically)')
    .option('--per-tensor', 'also print the per-tensor table')
    .option('--quiet', 'no progress bar')
    .action(async (o: Opts) => {
      const probe = probeFromFlags(o);
      const threads = intFlag('--threads', o.threads, 1);
      const shard = parseShard(o.shard);
      let progress: ReturnType<typeof createProgress> | null = null;
      let last = 0;
      const doc = await updateSparsity(o.base, o.tuned, {
        probe,
        compareProbes: !!o.compareProbes,
        threads,
        shard,
        onProgress: (done, total) => {
          progress ??= createProgress(total, 'sparsity', { quiet: o.quiet, unit: 'bytes' });
          progress.tick(done - last);
          last = done;
        },
      });
      (progress as ReturnType<typeof createProgress> | null)?.stop();
      const tables = {
        '': sparsityTable(doc),
        kinds: sparsityByKindTable(doc),
        layers: sparsityByLayerTable(doc),
        tensors: sparsityTensorTable(doc),
      };
      if (o.out) writeOutputs(o.out, 'sparsity', doc, tables);
      if (o.json) {
        process.stdout.write(toJson(doc));
        return;
      }
      const out: string[] = [sparsityParamsLine(doc), '', toText(tables['']), 'sparsity per module kind', toText(tables.kinds)];
      if (tables.layers.rows.length > 0) out.push('sparsity per layer', toText(tables.layers));
      if (o.perTensor) out.push('per tensor', toText(tables.tensors));
      const notes = sparsityNotes(doc);
      if (notes.length > 0) out.push(...notes, '');
      if (o.out) out.push(`wrote ${o.out}/sparsity.json and CSV/Markdown tables`);
      process.stdout.write(out.join('\n') + (out[out.length - 1] === '' ? '' : '\n'));
    });
}
