/**
 * Defensive readers for the probes' JSON documents. The report must render whatever subset
 * of the analysis exists, written by tool versions that may add fields, so adapters read
 * through these helpers: a missing or mistyped field becomes null, never an exception.
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { [k: string]: Json };

export function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
export function obj(x: unknown): Obj | null { return isObj(x) ? x : null; }
export function arr(x: unknown): Json[] { return Array.isArray(x) ? (x as Json[]) : []; }
export function num(x: unknown): number | null { return typeof x === 'number' && Number.isFinite(x) ? x : null; }
export function str(x: unknown): string | null { return typeof x === 'string' ? x : null; }
export function nums(x: unknown): (number | null)[] { return arr(x).map(num); }

/** `get(o, 'a', 'b', 0)` = o.a.b[0], or undefined. */
export function get(x: unknown, ...path: (string | number)[]): Json | undefined {
  let cur: unknown = x;
  for (const p of path) {
    if (typeof p === 'number') { if (!Array.isArray(cur)) return undefined; cur = cur[p]; }
    else { if (!isObj(cur)) return undefined; cur = cur[p]; }
  }
  return cur as Json | undefined;
}

/** First of several alternative field names that is present (field names may evolve). */
export function pick(o: unknown, ...keys: string[]): Json | undefined {
  if (!isObj(o)) return undefined;
  for (const k of keys) if (k in o && o[k] !== undefined) return o[k];
  return undefined;
}

/** Rounds to `digits` significant digits: keeps report.html compact (curves are drawn, not reprinted). */
export function round(x: number | null, digits = 5): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  if (x === 0 || Number.isInteger(x)) return x;
  return Number(x.toPrecision(digits));
}
export function roundAll(xs: readonly (number | null)[], digits = 5): (number | null)[] { return xs.map((v) => round(v, digits)); }

export function mean(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
}
