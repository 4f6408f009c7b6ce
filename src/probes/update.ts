/**
 * The update mask M = 1[changed] of one tensor pair (SPEC §1–§2).
 *
 * Rule 'bf16' (default, paper Def. 2.1): unchanged iff |w+ − w0| ≤ η·max(|w0|, |w+|), η = 1e-3.
 * For two finite bf16 values this is exactly "bit patterns equal, ±0 equal" (App. E,
 * Prop. E.3), which is the fast path. Rule 'abs' (Mukherjee et al. 2025): unchanged iff
 * |w+ − w0| ≤ tol.
 *
 * Non-finite entries: an entry where either side is NaN or ±Inf is counted in
 * `nonFinite` and decided bitwise (identical bits → unchanged), so a NaN never silently
 * looks like a real update or a real non-update; reports flag every tensor with
 * nonFinite > 0.
 */
import { type DType, decodeToFloat32 } from '../io/dtype.js';
import type { TensorSource } from '../io/checkpoint.js';
import { BitMask } from './mask.js';

export type ProbeRule = 'bf16' | 'abs';

export interface ProbeOptions {
  rule: ProbeRule;
  /** Relative tolerance of the bf16 rule. */
  eta: number;
  /** Absolute tolerance of the abs rule. */
  tol: number;
}

export const DEFAULT_PROBE: Readonly<ProbeOptions> = { rule: 'bf16', eta: 1e-3, tol: 1e-5 };

export interface MaskStats {
  /** Entries where base or tuned is NaN/Inf. */
  nonFinite: number;
}

/** True when the rule can be decided by comparing bf16 bit patterns. */
export function isBitwiseFastPath(a: DType, b: DType, p: ProbeOptions): boolean {
  return a === 'BF16' && b === 'BF16' && p.rule === 'bf16' && p.eta <= 2 ** -9;
}

/**
 * Marks changed entries of a chunk into `mask`, starting at flat index `start`. `base` and
 * `tuned` are raw little-endian bytes of the same number of elements.
 */
export function markChanged(
  mask: BitMask, start: number,
  base: Uint8Array, baseDtype: DType, tuned: Uint8Array, tunedDtype: DType,
  p: ProbeOptions, stats: MaskStats,
): void {
  const words = mask.words;
  if (isBitwiseFastPath(baseDtype, tunedDtype, p)) {
    const n = base.byteLength >>> 1;
    const a = aligned16(base), b = aligned16(tuned);
    for (let j = 0; j < n; j++) {
      const x = a[j]!, y = b[j]!;
      // finite iff exponent bits are not all ones
      if ((x & 0x7f80) === 0x7f80 || (y & 0x7f80) === 0x7f80) stats.nonFinite++;
      // changed iff bits differ and not (both are ±0)
      const changed = (x ^ y) !== 0 && ((x | y) & 0x7fff) !== 0 ? 1 : 0;
      const i = start + j;
      words[i >>> 5]! |= changed << (i & 31);
    }
    return;
  }
  const x = decodeToFloat32(base, baseDtype);
  const y = decodeToFloat32(tuned, tunedDtype);
  const relative = p.rule === 'bf16';
  for (let j = 0; j < x.length; j++) {
    const u = x[j]!, v = y[j]!;
    let changed: boolean;
    if (!Number.isFinite(u) || !Number.isFinite(v)) {
      stats.nonFinite++;
      changed = !(Object.is(u, v) || (u === v));
    } else {
      const d = Math.abs(v - u);
      changed = relative ? d > p.eta * Math.max(Math.abs(u), Math.abs(v)) : d > p.tol;
    }
    if (changed) { const i = start + j; words[i >>> 5]! |= 1 << (i & 31); }
  }
}

function aligned16(b: Uint8Array): Uint16Array {
  const src = b.byteOffset % 2 === 0 ? b : b.slice();
  return new Uint16Array(src.buffer, src.byteOffset, src.byteLength >>> 1);
}

/**
 * The update mask of tensor `name` between two checkpoints, read in chunks (bounded memory).
 * Shapes must match (callers pair tensors first and report mismatches).
 */
export function computeUpdateMask(
  base: TensorSource, tuned: TensorSource, name: string,
  p: ProbeOptions = DEFAULT_PROBE, stats: MaskStats = { nonFinite: 0 }, chunkElems = 1 << 20,
): BitMask {
  const bi = base.info(name), ti = tuned.info(name);
  const mask = new BitMask(bi.shape);
  const bs = bi.byteLength / bi.numel, ts = ti.byteLength / ti.numel;
  const bufA = new Uint8Array(Math.min(bi.numel, chunkElems) * bs);
  const bufB = new Uint8Array(Math.min(ti.numel, chunkElems) * ts);
  for (let start = 0; start < bi.numel; start += chunkElems) {
    const n = Math.min(chunkElems, bi.numel - start);
    const a = base.readBytes(name, start * bs, n * bs, bufA.subarray(0, n * bs));
    const b = tuned.readBytes(name, start * ts, n * ts, bufB.subarray(0, n * ts));
    markChanged(mask, start, a, bi.dtype, b, ti.dtype, p, stats);
  }
  return mask;
}
