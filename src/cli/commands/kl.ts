/**
 * `rlvr-lens kl --base B --tuned T --prompts FILE`: token-wise KL between a tuned model and
 * its base on a prompt set (SPEC §7), both directions, exact over the vocabulary, for
 * Hugging Face Qwen2 / Qwen3 / Llama / Mistral checkpoints with their tokenizer.json.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { loadTokenizer, readPrompts, tokenKl } from '../../lab/kl.js';
import { envelope, toJson } from '../../report/output.js';

function int(v: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) throw new UsageError(`${what} must be an integer in ${min}..${max}, not ${JSON.stringify(v)}`);
  return Number(v);
}

export function register(program: Command): void {
  program
    .command('kl')
    .description('token-wise KL between a tuned model and its base on a prompt set (SPEC §7): KL(π+‖π0) and KL(π0‖π+), exact over the vocabulary, on responses given or sampled from the tuned model; weights are streamed layer by layer')
    .requiredOption('--base <checkpoint>', 'base checkpoint (folder with config.json)')
    .requiredOption('--tuned <checkpoint>', 'tuned checkpoint (same architecture)')
    .requiredOption('--prompts <file>', '.jsonl with {"prompt", "response"?} per line, or a text file with one prompt per line')
    .option('--tokenizer <path>', 'tokenizer.json (or its folder); default: the tuned folder, then the base folder')
    .option('--samples <n>', 'responses sampled per prompt when none is given', '1')
    .option('--max-new <n>', 'max new tokens per sampled response', '32')
    .option('--seed <n>', 'sampling seed', '0')
    .option('--json', 'print the JSON document (kind "token-kl")')
    .option('--quiet', 'no progress on stderr')
    .action((o: { base: string; tuned: string; prompts: string; tokenizer?: string; samples: string; maxNew: string; seed: string; json?: boolean; quiet?: boolean }) => {
      let tokenizer;
      try { tokenizer = loadTokenizer(o.tokenizer ?? o.tuned); } catch (e) {
        if (o.tokenizer) throw e;
        tokenizer = loadTokenizer(o.base);
      }
      const t0 = Date.now();
      const r = tokenKl({
        base: o.base, tuned: o.tuned, prompts: readPrompts(o.prompts), tokenizer,
        samples: int(o.samples, '--samples', 1, 1024), maxNew: int(o.maxNew, '--max-new', 1, 4096), seed: int(o.seed, '--seed', 0, 0xffffffff),
        ...(o.quiet ? {} : { onProgress: (w: string) => process.stderr.write(`kl: ${w}\n`) }),
      });
      if (!o.quiet) process.stderr.write(`kl: ${r.tokens} response tokens in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      if (o.json) { process.stdout.write(toJson(envelope('token-kl', r))); return; }
      process.stdout.write(`responses: ${r.responsesFrom}; ${r.prompts.length} prompts, ${r.tokens} response tokens (token mean per prompt, then mean over prompts)\n`);
      process.stdout.write(`KL(π+ ‖ π0) = ${r.meanKlTunedBase.toPrecision(6)}   [tuned ‖ base]\n`);
      process.stdout.write(`KL(π0 ‖ π+) = ${r.meanKlBaseTuned.toPrecision(6)}   [base ‖ tuned]\n`);
    });
}
