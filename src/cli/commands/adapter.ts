/**
 * `rlvr-lens adapter --base B --init lora|pissa|milora --rank r --alpha a --targets q_proj,v_proj --out DIR`:
 * a PEFT-format adapter (and, for PiSSA / MiLoRA, the residual base checkpoint) — see src/export/peft.ts.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { type AdapterInit, ADAPTER_INITS, buildAdapter } from '../../export/peft.js';
import { envelope, toJson, toText } from '../../report/output.js';
import { createProgress } from '../progress.js';
import { parseNumberOption } from '../options.js';

interface Opts {
  base: string; out: string; init: string; rank: string; alpha?: string; targets: string; layers?: string; seed: string;
  dropout: string; svd: string; residualOut?: string; threads: string; cache?: boolean; force?: boolean; json?: boolean; quiet?: boolean;
}

const num = parseNumberOption;

export function register(program: Command): void {
  program
    .command('adapter')
    .description('write a PEFT LoRA adapter initialised as LoRA, PiSSA (top-r singular components) or MiLoRA (r minor components), with the residual base for PiSSA/MiLoRA (paper §5.2)')
    .requiredOption('--base <checkpoint>', 'base checkpoint (never modified)')
    .requiredOption('--out <dir>', 'output folder (adapter_config.json, adapter_model.safetensors, residual_base/)')
    .requiredOption('--init <kind>', `initialisation: ${ADAPTER_INITS.join(' | ')}`)
    .requiredOption('--rank <r>', 'LoRA rank r')
    .option('--alpha <a>', 'lora_alpha (scale = alpha / r); default r')
    .requiredOption('--targets <modules>', 'comma-separated module names, as PEFT target_modules (e.g. q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj), or all-linear')
    .option('--layers <layers>', 'only these decoder layers (0-based: 25, 20-27, 3,5, all); PEFT layers_to_transform')
    .option('--seed <n>', 'seed of the LoRA A init', '0')
    .option('--dropout <p>', 'lora_dropout written to adapter_config.json', '0')
    .option('--svd <method>', 'fast (randomized top-r for PiSSA, fp64 Gram eigen for MiLoRA) or exact (fp64 Jacobi SVD; slow beyond ~1000 columns)', 'fast')
    .option('--residual-out <dir>', 'where the residual base goes (default <out>/residual_base)')
    .option('--threads <n>', 'GEMM threads for the randomized SVD', '1')
    .option('--no-cache', 'do not read cached base decompositions (PiSSA)')
    .option('--force', 'replace existing output folders')
    .option('--json', 'print the result as JSON (kind "adapter")')
    .option('--quiet', 'no progress bar')
    .action(async (o: Opts) => {
      if (!(ADAPTER_INITS as readonly string[]).includes(o.init)) throw new UsageError(`--init must be one of ${ADAPTER_INITS.join(', ')}, not ${JSON.stringify(o.init)}`);
      if (o.svd !== 'fast' && o.svd !== 'exact') throw new UsageError(`--svd must be fast or exact, not ${JSON.stringify(o.svd)}`);
      const rank = num(o.rank, '--rank', true);
      let progress: ReturnType<typeof createProgress> | null = null;
      const r = await buildAdapter({
        base: o.base, out: o.out, init: o.init as AdapterInit, rank, alpha: o.alpha === undefined ? rank : num(o.alpha, '--alpha', false),
        targets: o.targets.split(','), layers: o.layers, seed: num(o.seed, '--seed', true), dropout: num(o.dropout, '--dropout', false),
        svd: o.svd, residualOut: o.residualOut, force: o.force === true, threads: num(o.threads, '--threads', true),
        ...(o.cache === false ? { cacheDir: null } : {}),
        onModule: (_m, done, total) => { progress ??= createProgress(total, 'decomposing', { quiet: o.quiet }); progress.tick(1); },
      });
      (progress as ReturnType<typeof createProgress> | null)?.stop();
      if (o.json) {
        process.stdout.write(toJson(envelope('adapter', r)));
        return;
      }
      const rows = r.modules.map((m) => [
        m.module, `${m.shape[0]}×${m.shape[1]}`,
        m.singularValues ? m.singularValues[0]! : null, m.singularValues ? m.singularValues[m.singularValues.length - 1]! : null,
        m.energyInAdapter, m.mergeMaxAbsErrorF32, m.mergeMaxAbsErrorStored, m.maxAbsWeight,
      ]);
      process.stdout.write(
        `wrote ${r.out}: ${r.init} adapter, r=${r.rank}, lora_alpha=${r.alpha} (scale ${r.scale}), ${r.modules.length} modules, ${r.adapterParams.toLocaleString('en-US')} adapter parameters\n` +
        (r.residualBase ? `residual base (W − scale·B·A, stored as ${r.residualDtype}): ${r.residualBase}\n` : 'base weights unchanged (B = 0)\n') +
        `max |W − (W_res + scale·B·A)|: ${r.maxMergeErrorF32.toExponential(3)} with W_res in fp32, ${r.maxMergeErrorStored.toExponential(3)} as stored\n\n` +
        toText({ columns: ['module', 'shape', 'σ first', 'σ last', 'energy in adapter', 'merge err f32', 'merge err stored', 'max |W|'], rows }, 3),
      );
    });
}
