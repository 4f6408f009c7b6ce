/**
 * Pairing base and tuned tensors by name. Single tensors are never fatal: tensors missing from
 * the tuned model, extra in it, or with a different shape are listed and skipped (only a tuned
 * model sharing none of them is an error: `requireSharedTensors`); a dtype
 * change is recorded and handled by the probes (both sides decoded); tensors whose dtype is
 * not a float (step counters, masks, position ids) are listed as skipped.
 */
import { FormatError } from '../errors.js';
import type { DType, TensorSource } from '../io/checkpoint.js';
import { isFloatDType } from '../io/dtype.js';
import { compareTensorNames } from '../model/names.js';

export interface PairedTensor {
  name: string;
  shape: readonly number[];
  numel: number;
  baseDtype: DType;
  tunedDtype: DType;
  /** Bytes of the base tensor (for balancing work). */
  baseBytes: number;
  tunedBytes: number;
}

export interface ShapeMismatch { name: string; base: number[]; tuned: number[] }
export interface DtypeChange { name: string; base: DType; tuned: DType }
export interface NonFloatTensor { name: string; base: DType; tuned: DType }

export interface Pairing {
  paired: PairedTensor[];
  /** In the base, not in the tuned model. */
  missing: string[];
  /** In the tuned model, not in the base. */
  extra: string[];
  shapeMismatch: ShapeMismatch[];
  /** Paired tensors stored with different dtypes (compared on decoded values). */
  dtypeChanged: DtypeChange[];
  /** Same name and shape but a non-float dtype on either side: skipped. */
  nonFloat: NonFloatTensor[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Pairs every base tensor with the same-named tuned tensor. All lists in natural name order. */
export function pairTensors(base: TensorSource, tuned: TensorSource): Pairing {
  const r: Pairing = { paired: [], missing: [], extra: [], shapeMismatch: [], dtypeChanged: [], nonFloat: [] };
  for (const name of base.names) {
    if (!tuned.has(name)) { r.missing.push(name); continue; }
    const bi = base.info(name), ti = tuned.info(name);
    if (!sameShape(bi.shape, ti.shape)) { r.shapeMismatch.push({ name, base: [...bi.shape], tuned: [...ti.shape] }); continue; }
    if (!isFloatDType(bi.dtype) || !isFloatDType(ti.dtype)) { r.nonFloat.push({ name, base: bi.dtype, tuned: ti.dtype }); continue; }
    if (bi.dtype !== ti.dtype) r.dtypeChanged.push({ name, base: bi.dtype, tuned: ti.dtype });
    r.paired.push({ name, shape: [...bi.shape], numel: bi.numel, baseDtype: bi.dtype, tunedDtype: ti.dtype, baseBytes: bi.byteLength, tunedBytes: ti.byteLength });
  }
  for (const name of tuned.names) if (!base.has(name)) r.extra.push(name);
  r.extra.sort(compareTensorNames);
  return r;
}

/** Number of tensors skipped for any reason (missing, mismatched, non-float). */
export function skippedCount(p: Pairing): number {
  return p.missing.length + p.shapeMismatch.length + p.nonFloat.length;
}

/**
 * Throws when `tuned` holds none of `names` (base tensors) under the same name and shape: then
 * it is not a fine-tune of `base` (another model or size) and every measurement would be empty.
 * Some tensors missing or reshaped is not fatal: those are listed and skipped.
 */
export function requireSharedTensors(base: TensorSource, tuned: TensorSource, names: readonly string[]): void {
  if (names.length === 0) return;
  let example = '';
  for (const name of names) {
    if (!tuned.has(name)) continue;
    const b = base.info(name).shape, t = tuned.info(name).shape;
    if (sameShape(b, t)) return;
    example ||= `; e.g. ${name} is [${t.join('x')}], the base's [${b.join('x')}]`;
  }
  throw new FormatError(tuned.root, 'E_NO_SHARED_TENSORS',
    `none of the base's ${names.length} compared tensors is here with the same name and shape${example}: is it a fine-tune of ${base.root}?`);
}
