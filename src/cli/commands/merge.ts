/** `rlvr-lens merge`: joins `--shard i/N` outputs into what one run would have written. */
import type { Command } from 'commander';
import { mergeOutputs, mergeableKinds } from '../../run/merge.js';

export function register(program: Command): void {
  program
    .command('merge')
    .description(`Join shard outputs (folders from --shard i/N runs, or their JSON files) into one run's output, byte-identical (kinds: ${mergeableKinds().join(', ')})`)
    .argument('<inputs...>', 'shard output folders or JSON files')
    .requiredOption('--out <dir>', 'folder to write the merged JSON and tables to')
    .option('--no-report', 'do not write report.html when the inputs are `analyze` shard folders')
    .action(async (inputs: string[], o: { out: string; report: boolean }) => {
      const r = mergeOutputs(inputs, o.out);
      for (const s of r.skipped) process.stderr.write(`rlvr-lens: ${s}: no merger for this kind; left out\n`);
      process.stdout.write(`wrote ${r.written.length} files to ${o.out}: ${r.written.filter((f) => f.endsWith('.json')).join(', ')}\n`);
      if (o.report && r.written.includes('manifest.json')) {
        // merged analyze shards: the report a single run would have ended with
        const { writeReport } = await import('../../report/html/index.js');
        const rep = await writeReport(o.out);
        process.stdout.write(`report: ${rep.path}\n`);
      }
    });
}
