/** Parsing of numeric command-line values shared by commands (one readable UsageError line). */
import { UsageError } from '../errors.js';

/** `v` as a finite number (an integer when `integer`), or a UsageError naming `what`. */
export function parseNumberOption(v: string, what: string, integer: boolean): number {
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (integer && !Number.isInteger(x))) throw new UsageError(`${what} must be ${integer ? 'an integer' : 'a number'}, not ${JSON.stringify(v)}`);
  return x;
}
