/**
 * `rlvr-lens spectrum`: principal angles of the top-k singular subspaces, NSS, singular
 * values and the SPEC §5 theory checks of tuned checkpoints vs a base (paper §3, §4.1).
 * Also exports the option parsing shared by `principal` and `analyze`.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { MODULE_KINDS, type ModuleKind } from '../../model/names.js';
import { type GeometryOptions, boundsTables, runGeometry, spectrumTables } from '../../run/geometry.js';
import { parseShard } from '../../run/shard.js';
import { toJson, toText, writeOutputs } from '../../report/output.js';
import { addProbeOptions, probeFromFlags } from '../options.js';
import { createProgress } from '../progress.js';

export interface GeometryFlags {
  base: string;
  tuned: string[];
  layers?: string;
  modules?: string;
  k: string;
  alpha: string;
  threads?: string;
  cache: boolean;
  cacheDir?: string;
  exact?: string | boolean;
  fullSpectrum?: boolean;
  shard?: string;
  probe: string;
  eta: string;
  tol: string;
  seed: string;
  method: string;
  out?: string;
  json?: boolean;
  quiet?: boolean;
}

/** Adds the options common to spectrum / principal / analyze. */
export function geometryFlags(c: Command): Command {
  return addProbeOptions(c
    .requiredOption('--base <checkpoint>', 'base checkpoint: .safetensors file, folder, sharded folder, or HF cache id')
    .requiredOption('--tuned <checkpoints...>', 'one or more fine-tuned checkpoints (the base is decomposed once)')
    .option('--layers <list>', 'decoder layers, e.g. 0-3,7 or all (default: all)')
    .option('--modules <kinds>', `module kinds, comma-separated (${['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'expert', 'router'].join(', ')})`)
    .option('-k, --k <k>', 'rank of the subspaces and of the reconstruction (capped at each matrix rank)', '64')
    .option('--alpha <α>', 'fraction of M_princ and M_low', '0.5')
    .option('--threads <n>', 'GEMM threads of the solver (default 1)')
    .option('--no-cache', 'do not read or write the base decomposition cache')
    .option('--cache-dir <dir>', 'decomposition cache folder (default $RLVR_CACHE or ~/.cache/rlvr-lens)')
    .option('--exact [regex]', 'dense fp64 SVD (slow) for the tensors matching regex (all when no regex)')
    .option('--full-spectrum', 'also NSS over all singular values (fp64 Gram eigenvalues; small matrices)')
    .option('--shard <i/N|auto>', 'process shard i of N (0-based) of the tensors; join outputs with `rlvr-lens merge`'))
    .option('--seed <n>', 'seed of the randomized solver', '0')
    .option('--method <m>', 'top-k solver: auto (fp64 Gram eigen when min(rows, cols) ≤ 320, else randomized subspace iteration), randomized, gram', 'auto')
    .option('--out <dir>', 'write JSON + CSV/Markdown tables to this folder (atomically)')
    .option('--json', 'print the JSON document(s) instead of tables')
    .option('--quiet', 'no progress bar');
}

function int(flag: string, v: string, min: number): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < min) throw new UsageError(`${flag} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return x;
}

export function parseModules(v: string | undefined): ModuleKind[] | undefined {
  if (v === undefined) return undefined;
  const kinds = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) if (!(MODULE_KINDS as readonly string[]).includes(k)) throw new UsageError(`--modules: unknown module kind ${JSON.stringify(k)} (known: ${MODULE_KINDS.join(', ')})`);
  if (kinds.length === 0) throw new UsageError('--modules: empty list');
  return kinds as ModuleKind[];
}

/** GeometryOptions from the flags (validated; UsageError on bad values). */
export function geometryOptions(o: GeometryFlags): GeometryOptions {
  const alpha = Number(o.alpha);
  if (o.alpha.trim() === '' || !(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha must be a number in [0, 1], got ${JSON.stringify(o.alpha)}`);
  let exact: RegExp | boolean | undefined;
  if (o.exact === true) exact = true;
  else if (typeof o.exact === 'string') {
    try { exact = new RegExp(o.exact); } catch (e) { throw new UsageError(`--exact: invalid regular expression (${(e as Error).message})`); }
  }
  const modules = parseModules(o.modules);
  if (o.method !== 'auto' && o.method !== 'randomized' && o.method !== 'gram') throw new UsageError(`--method must be auto, randomized or gram, got ${JSON.stringify(o.method)}`);
  return {
    method: o.method,
    k: int('-k', o.k, 1), alpha, threads: o.threads !== undefined ? int('--threads', o.threads, 1) : 1,
    cacheDir: o.cache === false ? null : o.cacheDir, fullSpectrum: !!o.fullSpectrum, shard: parseShard(o.shard),
    probe: probeFromFlags(o), seed: int('--seed', o.seed, 0),
    ...(o.layers !== undefined ? { layers: o.layers } : {}), ...(modules ? { modules } : {}), ...(exact !== undefined ? { exact } : {}),
  };
}

export function tensorProgress(quiet: boolean | undefined): { onTensor: (name: string, done: number, total: number) => void; stop: () => void } {
  let bar: ReturnType<typeof createProgress> | null = null;
  return {
    onTensor: (name, _done, total) => { bar ??= createProgress(total, 'tensors', { quiet, unit: 'items' }); bar.tick(1, name); },
    stop: () => { (bar as ReturnType<typeof createProgress> | null)?.stop(); },
  };
}

export function register(program: Command): void {
  geometryFlags(program
    .command('spectrum')
    .description('Spectrum preservation (paper §4.1): principal angles between top-k singular subspaces (U and V), max angle per tensor, normalized spectral shift, singular values, and the theory checks (Wedin, Weyl, Hoffman–Wielandt, Ky Fan; SPEC §5)'))
    .option('--no-bounds', 'skip the theory checks (‖ΔW‖₂ power iterations)')
    .option('--per-tensor', 'also print the per-tensor table')
    .action(async (o: GeometryFlags & { bounds: boolean; perTensor?: boolean }) => {
      const opts = geometryOptions(o);
      const p = tensorProgress(o.quiet);
      const run = await runGeometry(o.base, o.tuned, { ...opts, want: { spectrum: true, principal: false, bounds: o.bounds }, onTensor: p.onTensor });
      p.stop();
      const spec = run.spectrum!;
      const st = spectrumTables(spec);
      const bt = run.bounds ? boundsTables(run.bounds) : null;
      if (o.out) {
        writeOutputs(o.out, 'spectrum', spec, st);
        if (run.bounds && bt) writeOutputs(o.out, 'bounds', run.bounds, bt);
      }
      if (o.json) { process.stdout.write(toJson(run.bounds ? { spectrum: spec, bounds: run.bounds } : spec)); return; }
      const lines = [`k = ${spec.params.k}, solver (topKSVD method ${spec.params.solver.method}: tol ${spec.params.solver.tol}, angleTol ${spec.params.solver.angleTol}°, oversample ${spec.params.solver.oversample}, warm start from the base), backend ${spec.params.solver.backend}${spec.params.exact ? `, exact for /${spec.params.exact}/` : ''}`, '',
        toText(st['']!), 'per module kind', toText(st.kinds!)];
      if (st.layers!.rows.length) lines.push('per layer', toText(st.layers!));
      if (o.perTensor) lines.push('per tensor', toText(st.tensors!));
      if (bt) lines.push('theory checks (measured vs bound)', toText(bt['']!));
      if (o.out) lines.push(`wrote ${o.out}/spectrum.json${run.bounds ? ' and bounds.json' : ''} with CSV/Markdown tables`);
      process.stderr.write(`decomposition cache: ${run.cache.dir ?? 'off'} (hits ${run.cache.hits}, misses ${run.cache.misses})\n`);
      process.stdout.write(lines.join('\n') + '\n');
    });
}
