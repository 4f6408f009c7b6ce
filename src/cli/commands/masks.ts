/**
 * `rlvr-lens masks --base B --kind princ|nonprinc|low|safe|random-like-safe --alpha 0.5 --rank 64 --out masks.safetensors`:
 * sparse-RL training masks (SPEC §4, paper §5.1) — see src/export/masks.ts.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { type MaskKind, MASK_KINDS, buildMasks } from '../../export/masks.js';
import { MODULE_KINDS, type ModuleKind } from '../../model/names.js';
import { envelope, toJson, toText } from '../../report/output.js';
import { createProgress } from '../progress.js';
import { parseNumberOption } from '../options.js';

interface Opts {
  base: string; out: string; kind: string; alpha: string; rank: string; seed: string; layers?: string; modules?: string;
  threads: string; cache?: boolean; force?: boolean; json?: boolean; quiet?: boolean; perTensor?: boolean;
}

const num = parseNumberOption;

export function register(program: Command): void {
  program
    .command('masks')
    .description('write sparse-RL training masks (BOOL safetensors, 1 = trainable) for every 2-D linear weight: principal, non-principal, low-magnitude, safe = M_low ∪ ¬M_princ, or random with the safe density (paper §5.1)')
    .requiredOption('--base <checkpoint>', 'base checkpoint (never modified)')
    .requiredOption('--kind <kind>', MASK_KINDS.join(' | '))
    .requiredOption('--out <file>', 'output .safetensors file')
    .option('--alpha <a>', 'fraction α for M_princ = Top_α(|W0^(k)|) and M_low = Bottom_α(|W0|)', '0.5')
    .option('--rank <k>', 'rank k of the reconstruction W0^(k) (capped at each matrix rank)', '64')
    .option('--seed <n>', 'seed of the random-like-safe mask', '0')
    .option('--layers <layers>', 'only these decoder layers (0-based: 25, 20-27, 3,5, all)')
    .option('--modules <kinds>', 'only these module kinds, comma-separated (q,k,v,o,gate,up,down,expert,router)')
    .option('--threads <n>', 'GEMM threads', '1')
    .option('--no-cache', 'do not read cached base decompositions')
    .option('--no-per-tensor', 'print only the per-module summary, not the per-tensor table')
    .option('--force', 'replace an existing output file')
    .option('--json', 'print the result as JSON (kind "masks")')
    .option('--quiet', 'no progress bar')
    .action(async (o: Opts) => {
      if (!(MASK_KINDS as readonly string[]).includes(o.kind)) throw new UsageError(`--kind must be one of ${MASK_KINDS.join(', ')}, not ${JSON.stringify(o.kind)}`);
      const modules = o.modules?.split(',').map((m) => m.trim()).filter(Boolean);
      for (const m of modules ?? []) if (!(MODULE_KINDS as readonly string[]).includes(m)) throw new UsageError(`--modules: unknown module kind ${JSON.stringify(m)} (known: ${MODULE_KINDS.join(', ')})`);
      let progress: ReturnType<typeof createProgress> | null = null;
      const r = await buildMasks({
        base: o.base, out: o.out, kind: o.kind as MaskKind, alpha: num(o.alpha, '--alpha', false), rank: num(o.rank, '--rank', true),
        seed: num(o.seed, '--seed', true), layers: o.layers, modules: modules as ModuleKind[] | undefined, force: o.force === true,
        threads: num(o.threads, '--threads', true), ...(o.cache === false ? { cacheDir: null } : {}),
        onTensor: (_n, _d, total) => { progress ??= createProgress(total, 'masks', { quiet: o.quiet }); progress.tick(1); },
      });
      (progress as ReturnType<typeof createProgress> | null)?.stop();
      if (o.json) {
        process.stdout.write(toJson(envelope('masks', r)));
        return;
      }
      const mods = Object.entries(r.byModule).map(([m, b]) => [m, b.trainable, b.total, b.fraction]);
      mods.push(['all linear', r.trainable, r.total, r.fraction]);
      let text = `wrote ${r.out}: ${r.kind} mask, α=${r.alpha}, k=${r.rank}${r.kind === 'random-like-safe' ? `, seed ${r.seed}` : ''}, ${r.tensors.length} tensors (BOOL, 1 = trainable)\n` +
        `trainable: ${(100 * r.fraction).toFixed(2)}% of the masked linear weights; ${(100 * r.fractionOfModel).toFixed(2)}% of all ${r.modelParams.toLocaleString('en-US')} parameters if unmasked tensors train densely\n\n` +
        toText({ columns: ['module', 'trainable', 'total', 'fraction'], rows: mods }, 4);
      if (o.perTensor !== false) text += '\n' + toText({ columns: ['tensor', 'shape', 'trainable', 'total', 'fraction'], rows: r.tensors.map((t) => [t.name, `${t.shape[0]}×${t.shape[1]}`, t.trainable, t.total, t.fraction]) }, 4);
      process.stdout.write(text);
    });
}
