/**
 * `rlvr-lens intervene --base B [--rotate-vo LAYERS] [--permute-heads LAYERS] --seed S --out DIR`:
 * a function-preserving scrambled copy of a checkpoint (SPEC §6). LAYERS are 0-based decoder
 * layer indices as in the tensor names: "25", "20-27", "3,5,7-9" or "all".
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { intervene } from '../../interventions/intervene.js';
import type { RotationKind } from '../../interventions/rotate.js';
import { envelope, toJson, toText } from '../../report/output.js';
import { createProgress } from '../progress.js';

interface Opts {
  base: string; out: string; rotateVo?: string; permuteHeads?: string; seed: string;
  rotation: string; sharedRotation?: boolean; force?: boolean; tokens: string; json?: boolean; quiet?: boolean;
}

function intArg(v: string, what: string, min: number, max: number): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) throw new UsageError(`${what} must be an integer in ${min}..${max}, not ${JSON.stringify(v)}`);
  return Number(v);
}

export function register(program: Command): void {
  program
    .command('intervene')
    .description('write a function-preserving copy of a checkpoint with V/O rotations and/or kv-head permutations in chosen layers (paper §4.3, App. D), verified by a forward pass of each touched attention block')
    .requiredOption('--base <checkpoint>', 'input checkpoint (file, folder, sharded folder or HF cache id); never modified')
    .requiredOption('--out <dir>', 'output folder for the new checkpoint (must not exist unless --force)')
    .option('--rotate-vo <layers>', 'layers whose V/O projections get rotated: 0-based indices as in the tensor names, e.g. 25, 20-27, 3,5,7-9, all')
    .option('--permute-heads <layers>', 'layers whose kv heads (with their query groups) get permuted; same forms')
    .option('--seed <n>', 'seed of the rotations and permutations', '0')
    .option('--rotation <kind>', 'haar (QR of a Gaussian, per kv head) or hadamard (normalized, head_dim a power of 2)', 'haar')
    .option('--shared-rotation', 'one rotation for all kv heads of a layer (paper App. D) instead of one per kv head')
    .option('--tokens <n>', 'tokens in the verification forward pass', '16')
    .option('--force', 'replace an existing output folder')
    .option('--json', 'print the result as JSON (kind "intervention")')
    .option('--quiet', 'no progress bar')
    .action((o: Opts) => {
      const rotation = o.rotation as RotationKind;
      if (rotation !== 'haar' && rotation !== 'hadamard') throw new UsageError(`--rotation must be haar or hadamard, not ${JSON.stringify(o.rotation)}`);
      if (!o.rotateVo && !o.permuteHeads) throw new UsageError('nothing to do: give --rotate-vo and/or --permute-heads');
      let progress: ReturnType<typeof createProgress> | null = null;
      const r = intervene({
        base: o.base, out: o.out, rotateLayers: o.rotateVo, permuteLayers: o.permuteHeads,
        seed: intArg(o.seed, '--seed', 0, 0xffffffff), rotation, sharedRotation: o.sharedRotation === true,
        force: o.force === true, verifyTokens: intArg(o.tokens, '--tokens', 1, 4096),
        onTensor: (_n, bytes, total) => {
          progress ??= createProgress(total, 'writing', { quiet: o.quiet, unit: 'bytes' });
          progress.tick(bytes);
        },
      });
      (progress as ReturnType<typeof createProgress> | null)?.stop();
      if (o.json) {
        process.stdout.write(toJson(envelope('intervention', r)));
        return;
      }
      const rows = r.layers.map((l) => [
        l.layer,
        [l.rotated ? `rotate V/O (${r.rotation}${r.sharedRotation ? ', shared' : ''})` : '', l.permutation ? `permute kv [${l.permutation.join(',')}]` : ''].filter(Boolean).join(' + '),
        l.verification.stored.maxAbsDiff,
        l.verification.stored.relFrobenius,
        l.verification.exactArithmetic?.relFrobenius ?? null,
        l.rotated ? l.verification.estimatedRelFrobenius : null,
      ]);
      process.stdout.write(
        `wrote ${r.out} (${r.files.length} checkpoint file${r.files.length === 1 ? '' : 's'}, ${r.copiedFiles.length} side file${r.copiedFiles.length === 1 ? '' : 's'} copied; record in rlvr_lens/intervention.json)\n` +
        `seed ${r.seed}; verification: fp64 forward pass of each touched attention block, ${r.layers[0]?.verification.tokens ?? 0} random tokens\n\n` +
        toText({ columns: ['layer', 'intervention', 'max |Δout|', 'rel ‖Δout‖ stored', 'rel ‖Δout‖ fp64', 'rel estimate'], rows }, 3) +
        r.layers.filter((l) => l.verification.warning).map((l) => `warning: layer ${l.layer}: ${l.verification.warning}\n`).join(''),
      );
    });
}
