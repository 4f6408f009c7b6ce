/**
 * Magnitude-conditioned change rate (SPEC §2, our addition; Gate III made visible): the
 * fraction of entries each tuned model changed, per binade floor(log2|w0|) of the base
 * weight. In bf16 a relative update smaller than ~2^-9 of |w0| rounds away, so large
 * weights change less often; this curve shows how much.
 *
 * Zeros (binade −∞) form their own row; entries whose base value is NaN/Inf are counted
 * apart (`nonFinite`), never in a binade.
 */
import { type DType, decodeToFloat32, u16View } from '../io/dtype.js';
import type { ModuleKind } from '../model/names.js';
import { binade } from './magnitude.js';
import type { BitMask } from './mask.js';

/** Binades are stored at index binade + OFFSET; index 0 holds zeros. Covers f32's range. */
const OFFSET = 160;
const SLOTS = 2 * OFFSET + 1;
const ZERO_SLOT = 0;
const NONFINITE = -1;

let bf16Table: Int16Array | null = null;
let f16Table: Int16Array | null = null;

/** Slot of each 15-bit magnitude pattern (sign dropped), built once with `binade`. */
function magnitudeTable(dtype: 'BF16' | 'F16'): Int16Array {
  const cached = dtype === 'BF16' ? bf16Table : f16Table;
  if (cached) return cached;
  const t = new Int16Array(1 << 15);
  // all 2^15 patterns decoded in one call (one call per pattern was ~50 ms of every process)
  const patterns = new Uint16Array(t.length);
  for (let m = 0; m < t.length; m++) patterns[m] = m;
  const values = decodeToFloat32(new Uint8Array(patterns.buffer), dtype);
  for (let m = 0; m < t.length; m++) t[m] = slotOf(values[m]!);
  if (dtype === 'BF16') bf16Table = t; else f16Table = t;
  return t;
}

function slotOf(w: number): number {
  const e = binade(w);
  if (Number.isNaN(e)) return NONFINITE;
  if (e === -Infinity) return ZERO_SLOT;
  return Math.max(1, Math.min(SLOTS - 1, e + OFFSET));
}

/** Per-entry slot of a tensor's base bytes (zeros → 0, non-finite → −1). */
export function binadeSlots(bytes: Uint8Array, dtype: DType): Int16Array {
  if (dtype === 'BF16' || dtype === 'F16') {
    const t = magnitudeTable(dtype);
    const h = u16View(bytes);
    const out = new Int16Array(h.length);
    for (let i = 0; i < h.length; i++) out[i] = t[h[i]! & 0x7fff]!;
    return out;
  }
  const v = decodeToFloat32(bytes, dtype);
  const out = new Int16Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = slotOf(v[i]!);
  return out;
}

export interface ChangeRateAccumulator {
  runs: number;
  /** Keyed by module kind, plus 'all'. total[slot], changed[run][slot]. */
  groups: Map<string, { total: Float64Array; changed: Float64Array[]; nonFinite: number }>;
}

export function newChangeRateAccumulator(runs: number): ChangeRateAccumulator {
  return { runs, groups: new Map() };
}

function group(acc: ChangeRateAccumulator, key: string): { total: Float64Array; changed: Float64Array[]; nonFinite: number } {
  let g = acc.groups.get(key);
  if (!g) {
    g = { total: new Float64Array(SLOTS), changed: Array.from({ length: acc.runs }, () => new Float64Array(SLOTS)), nonFinite: 0 };
    acc.groups.set(key, g);
  }
  return g;
}

/** One tensor's counts per binade slot (what a worker sends back; added with `addChangeRateSlots`). */
export interface ChangeRateSlots {
  total: Float64Array;
  changed: Float64Array[];
  nonFinite: number;
}

function emptySlots(runs: number): ChangeRateSlots {
  return { total: new Float64Array(SLOTS), changed: Array.from({ length: runs }, () => new Float64Array(SLOTS)), nonFinite: 0 };
}

/** A tensor's binade counts from its base bytes and the R update masks against it. */
export function changeRateSlotsFromMasks(baseBytes: Uint8Array, dtype: DType, masks: readonly BitMask[]): ChangeRateSlots {
  const slots = binadeSlots(baseBytes, dtype);
  const local = emptySlots(masks.length);
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    if (s < 0) local.nonFinite++; else local.total[s]!++;
  }
  masks.forEach((m, r) => {
    const w = m.words, ch = local.changed[r]!;
    for (let k = 0; k < w.length; k++) {
      let x = w[k]!;
      while (x !== 0) {
        const low = x & -x;
        const s = slots[(k << 5) + 31 - Math.clz32(low)]!;
        if (s >= 0) ch[s]!++;
        x ^= low;
      }
    }
  });
  return local;
}

/**
 * A bf16/f16 tensor's binade counts from histograms over the 15-bit magnitude pattern (sign
 * dropped): `total[m]` entries and `changed[r][m]` entries changed by run r. Equal to
 * `changeRateSlotsFromMasks` on the same tensor, without a per-entry pass.
 */
export function changeRateSlotsFromPatterns(dtype: 'BF16' | 'F16', total: ArrayLike<number>, changed: readonly ArrayLike<number>[]): ChangeRateSlots {
  const t = magnitudeTable(dtype);
  const local = emptySlots(changed.length);
  for (let m = 0; m < t.length; m++) {
    const n = total[m]!;
    if (n === 0) continue;
    const s = t[m]!;
    if (s < 0) { local.nonFinite += n; continue; }
    local.total[s]! += n;
    for (let r = 0; r < changed.length; r++) local.changed[r]![s]! += changed[r]![m]!;
  }
  return local;
}

/** Adds one tensor's binade counts to its module kind's group and to 'all'. */
export function addChangeRateSlots(acc: ChangeRateAccumulator, kind: ModuleKind, local: ChangeRateSlots): void {
  if (local.changed.length !== acc.runs) throw new RangeError(`addChangeRateSlots: ${local.changed.length} runs for ${acc.runs}`);
  for (const key of [kind, 'all']) {
    const g = group(acc, key);
    for (let s = 0; s < SLOTS; s++) g.total[s]! += local.total[s]!;
    for (let r = 0; r < acc.runs; r++) for (let s = 0; s < SLOTS; s++) g.changed[r]![s]! += local.changed[r]![s]!;
    g.nonFinite += local.nonFinite;
  }
}

/** Adds one tensor: its base bytes and the R update masks against it. */
export function accumulateChangeRate(acc: ChangeRateAccumulator, kind: ModuleKind, baseBytes: Uint8Array, dtype: DType, masks: readonly BitMask[]): void {
  if (masks.length !== acc.runs) throw new RangeError(`accumulateChangeRate: ${masks.length} masks for ${acc.runs} runs`);
  addChangeRateSlots(acc, kind, changeRateSlotsFromMasks(baseBytes, dtype, masks));
}

/** Adds one bf16/f16 tensor from its pattern histograms (see `changeRateSlotsFromPatterns`). */
export function accumulateChangeRatePatterns(
  acc: ChangeRateAccumulator, kind: ModuleKind, dtype: 'BF16' | 'F16', total: ArrayLike<number>, changed: readonly ArrayLike<number>[],
): void {
  if (changed.length !== acc.runs) throw new RangeError(`accumulateChangeRatePatterns: ${changed.length} histograms for ${acc.runs} runs`);
  addChangeRateSlots(acc, kind, changeRateSlotsFromPatterns(dtype, total, changed));
}

export interface ChangeRateRow {
  /** floor(log2|w0|), or null for exact zeros. */
  binade: number | null;
  /** "2^-7" style label, "0" for zeros. */
  label: string;
  entries: number;
  changed: number[];
  /** changed / entries per run. */
  rate: number[];
}

export interface ChangeRateGroup {
  group: string;
  entries: number;
  nonFinite: number;
  rows: ChangeRateRow[];
}

export interface ChangeRateResult {
  definition: string;
  runs: string[];
  groups: ChangeRateGroup[];
}

/** Rows for non-empty binades, ascending (zeros first), per group ('all' first, then kinds). */
export function finishChangeRate(acc: ChangeRateAccumulator, runs: readonly string[]): ChangeRateResult {
  const keys = [...acc.groups.keys()].sort((a, b) => (a === 'all' ? -1 : b === 'all' ? 1 : a < b ? -1 : a > b ? 1 : 0));
  const groups = keys.map((key) => {
    const g = acc.groups.get(key)!;
    const rows: ChangeRateRow[] = [];
    let entries = 0;
    for (let s = 0; s < SLOTS; s++) {
      const n = g.total[s]!;
      if (n === 0) continue;
      entries += n;
      const e = s === ZERO_SLOT ? null : s - OFFSET;
      const changed = g.changed.map((c) => c[s]!);
      rows.push({ binade: e, label: e === null ? '0' : `2^${e}`, entries: n, changed, rate: changed.map((c) => c / n) });
    }
    return { group: key, entries, nonFinite: g.nonFinite, rows };
  });
  return {
    definition: 'per binade e = floor(log2|w0|) of the base weight: (#entries changed by the run) / (#entries in the binade); zeros separately, non-finite base entries excluded',
    runs: [...runs],
    groups,
  };
}
