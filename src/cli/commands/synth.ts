/** `rlvr-lens synth`: write a deterministic synthetic Qwen2 (1.5B-shaped) checkpoint. */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { generateSynthetic } from '../../synth/generate.js';
import { createProgress } from '../progress.js';

function num(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (!Number.isFinite(x)) throw new UsageError(`${name} must be a number, got ${JSON.stringify(v)}`);
  return x;
}

export function register(program: Command): void {
  program
    .command('synth')
    .description('Write a synthetic checkpoint with the exact tensor names and shapes of DeepSeek-R1-Distill-Qwen-1.5B (bf16), or a tuned model derived from --base')
    .requiredOption('--out <dir>', 'output folder')
    .option('--scale <s>', 'width scale in (0, 1]; 1 = full size (~3.55 GB)', '1')
    .option('--seed <n>', 'random seed (same seed, same bytes)', '0')
    .option('--base <checkpoint>', 'derive a tuned model from this checkpoint instead of writing a base')
    .option('--changed-fraction <f>', 'expected fraction of entries changed in a derived model', '0.3')
    .option('--sub-bf16-fraction <f>', 'fp32 only: fraction of entries changed below bf16 resolution', '0')
    .option('--dtype <dtype>', 'storage dtype of a base: BF16 or F32', 'BF16')
    .option('--spectrum-decay <a>', 'base only: linear weights get a power-law spectrum, singular values ~ (j+1)^-a (0 = i.i.d. entries, flat spectrum)', '0')
    .option('--sharded [n]', 'write n shards (default 2) with model.safetensors.index.json')
    .option('--quiet', 'print nothing (no progress bar)')
    .action((o: { out: string; scale: string; seed: string; base?: string; changedFraction: string; subBf16Fraction: string; dtype: string; spectrumDecay: string; sharded?: string | boolean; quiet?: boolean }) => {
      const dtype = o.dtype.toUpperCase();
      if (dtype !== 'BF16' && dtype !== 'F32') throw new UsageError(`--dtype must be BF16 or F32, got ${JSON.stringify(o.dtype)}`);
      const seed = num('--seed', o.seed, 0);
      if (!Number.isInteger(seed) || seed < 0) throw new UsageError('--seed must be a non-negative integer');
      const scale = num('--scale', o.scale, 1);
      if (!(scale > 0 && scale <= 1)) throw new UsageError(`--scale must be in (0, 1], got ${o.scale}`);
      const sharded = o.sharded === undefined ? false : o.sharded === true ? true : num('--sharded', String(o.sharded), 2);
      if (typeof sharded === 'number' && !(Number.isInteger(sharded) && sharded >= 1)) throw new UsageError('--sharded must be a positive integer');
      let progress: ReturnType<typeof createProgress> | null = null;
      let last = 0;
      const r = generateSynthetic({
        out: o.out, scale, seed, base: o.base, dtype,
        changedFraction: num('--changed-fraction', o.changedFraction, 0.3),
        subBf16Fraction: num('--sub-bf16-fraction', o.subBf16Fraction, 0),
        spectrumDecay: num('--spectrum-decay', o.spectrumDecay, 0),
        sharded,
        onProgress: (done, total) => {
          progress ??= createProgress(total, 'synth', { quiet: o.quiet, unit: 'bytes' });
          progress.tick(done - last);
          last = done;
        },
      });
      (progress as ReturnType<typeof createProgress> | null)?.stop();
      if (!o.quiet) {
        const what = r.changed === null ? 'base' : `tuned (${r.changed} of ${r.numel} entries changed, ${(r.changed / Math.max(1, r.numel) * 100).toFixed(2)}%)`;
        process.stdout.write(`wrote ${what}: ${r.tensors} tensors, ${(r.bytes / 2 ** 30).toFixed(3)} GiB in ${r.files.length} file(s) under ${r.dir}\n`);
      }
    });
}
