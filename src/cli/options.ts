/** Command-line options and value parsing shared by commands (each bad value: one readable UsageError line). */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { ProbeOptions } from '../probes/update.js';

/** `v` as a finite number (an integer when `integer`), or a UsageError naming `what`. */
export function parseNumberOption(v: string, what: string, integer: boolean): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x))) throw new UsageError(`${what} must be ${integer ? 'an integer' : 'a number'}, not ${JSON.stringify(v)}`);
  return x;
}

/** `v` as an integer ≥ min (undefined stays undefined), or a UsageError naming `flag`. */
export function intFlag(flag: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isInteger(x) || x < min) throw new UsageError(`${flag} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return x;
}

/** `v` as a non-negative finite number, or a UsageError naming `flag`. */
export function nonNegativeFlag(flag: string, v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < 0) throw new UsageError(`${flag} must be a non-negative number, got ${JSON.stringify(v)}`);
  return x;
}

/** `v` as a regular expression (undefined stays undefined), or a UsageError naming `flag`. */
export function regexFlag(flag: string, v: string | undefined): RegExp | undefined {
  if (v === undefined) return undefined;
  try { return new RegExp(v); } catch (e) { throw new UsageError(`${flag}: invalid regular expression (${(e as Error).message})`); }
}

/** --steps: comma-separated non-negative integers (undefined stays undefined). */
export function stepsFlag(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  return v.split(',').map((s) => {
    const x = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(x) || x < 0) throw new UsageError(`--steps: ${JSON.stringify(s)} is not a non-negative integer`);
    return x;
  });
}

/** The update-mask rule options every mask-reading command takes: --probe, --eta, --tol. */
export function addProbeOptions(c: Command, probeHelp = 'update-mask rule: bf16 (η rule) or abs (|Δ| ≤ tol)'): Command {
  return c
    .option('--probe <rule>', probeHelp, 'bf16')
    .option('--eta <η>', 'relative tolerance of the bf16 rule', '1e-3')
    .option('--tol <tol>', 'absolute tolerance of the abs rule', '1e-5');
}

/** ProbeOptions from --probe / --eta / --tol. */
export function probeFromFlags(o: { probe: string; eta: string; tol: string }): ProbeOptions {
  if (o.probe !== 'bf16' && o.probe !== 'abs') throw new UsageError(`--probe must be bf16 or abs, got ${JSON.stringify(o.probe)}`);
  return { rule: o.probe, eta: nonNegativeFlag('--eta', o.eta), tol: nonNegativeFlag('--tol', o.tol) };
}
