/** `rlvr-lens report DIR`: rebuild DIR/report.html from the analysis folder's data files alone. */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { writeReport } from '../../report/html/index.js';

export function register(program: Command): void {
  program
    .command('report')
    .description('Write DIR/report.html, one self-contained interactive HTML report (no network access), from the data files of an analysis folder')
    .argument('<dir>', 'analysis folder (written by rlvr-lens analyze --out DIR)')
    .option('--out <file>', 'write the report here instead of DIR/report.html')
    .option('--title <text>', 'report title')
    .option('--role <label=family...>', 'training family of a tuned model, rl or sft (e.g. --role qwen-grpo=rl qwen-sft=sft); default: from the manifest, else guessed from the name')
    .option('--quiet', 'print nothing')
    .action(async (dir: string, o: { out?: string; title?: string; role?: string[]; quiet?: boolean }) => {
      const roles: Record<string, 'rl' | 'sft' | 'other'> = {};
      for (const r of o.role ?? []) {
        const m = /^(.+)=(rl|sft|other)$/i.exec(r);
        if (!m) throw new UsageError(`--role expects label=rl or label=sft, got ${JSON.stringify(r)}`);
        roles[m[1]!] = m[2]!.toLowerCase() as 'rl' | 'sft' | 'other';
      }
      const r = await writeReport(dir, { out: o.out, title: o.title, roles });
      if (!o.quiet) {
        for (const p of r.problems) process.stderr.write(`rlvr-lens: warning: ${p}\n`);
        const shown = r.data.sections.filter((s) => s.available).map((s) => s.id);
        process.stdout.write(`wrote ${r.path} (${(r.bytes / 1024).toFixed(0)} KiB; ${r.data.runs.length} tuned model(s), ${r.data.tensors.length} tensors; sections: ${shown.join(', ')})\n`);
      }
    });
}
