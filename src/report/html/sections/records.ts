/**
 * Reading per-(tensor, tuned model) records whatever their layout: tensor-major
 * (`tensors[].results[i]`, as the sparsity probe writes) or run-major
 * (`runs[i].tensors[]`), and finding a metric among a record's (flattened, dotted) fields
 * by name patterns — so the spectrum/principal views survive field renames. A metric
 * that cannot be found is shown as missing, never guessed from another field.
 */
import { type Json, type Obj, arr, isObj, num, pick, str } from '../access.js';
import { arrOf, specOf } from './common.js';

/** Flattens nested objects to dotted lower-case keys (arrays kept as values). */
export function flatten(o: Obj, prefix = '', out: Record<string, Json> = {}): Record<string, Json> {
  for (const [k, v] of Object.entries(o)) {
    const key = (prefix ? `${prefix}.${k}` : k).toLowerCase();
    if (isObj(v)) flatten(v, key, out); else out[key] = v;
  }
  return out;
}

export interface Pattern { all: RegExp[]; none?: RegExp[] }

/** The first key (in document order) matching every `all` pattern and no `none` pattern. */
export function findKey(flat: Record<string, Json>, p: Pattern, want: 'number' | 'array'): string | null {
  for (const [k, v] of Object.entries(flat)) {
    if (!p.all.every((r) => r.test(k)) || (p.none ?? []).some((r) => r.test(k))) continue;
    if (want === 'number' && typeof v === 'number') return k;
    if (want === 'array' && Array.isArray(v) && v.some((x) => typeof x === 'number')) return k;
  }
  return null;
}

export function findNum(flat: Record<string, Json>, p: Pattern): number | null {
  const k = findKey(flat, p, 'number');
  return k === null ? null : num(flat[k]);
}

export function findArr(flat: Record<string, Json>, p: Pattern): (number | null)[] | null {
  const k = findKey(flat, p, 'array');
  return k === null ? null : arr(flat[k]).map(num);
}

export interface TensorRecords {
  name: string;
  layer: number | null;
  kind: string | null;
  shape: number[];
  /** Fields of the tensor itself (base-model quantities), flattened. */
  own: Record<string, Json>;
  /** Per tuned model (index into `specs`), flattened; null where absent. */
  perRun: (Record<string, Json> | null)[];
}

/** Tuned model specs of a document: inputs.tuned[].spec, tuned[], runs[] (strings or objects). */
export function docSpecs(doc: Obj): string[] {
  const inputs = pick(doc, 'inputs');
  for (const list of [arrOf(inputs, 'tuned'), arrOf(doc, 'tuned'), arrOf(doc, 'runs'), arrOf(doc, 'models')]) {
    const specs = list.map((x) => specOf(isObj(x) ? (pick(x, 'spec', 'path', 'tuned', 'name') ?? null) : x)).filter((s): s is string => s !== null);
    if (specs.length) return specs;
  }
  return [];
}

export function tensorRecords(doc: Obj): { specs: string[]; tensors: TensorRecords[] } {
  const specs = docSpecs(doc);
  const byName = new Map<string, TensorRecords>();
  const get = (t: Obj): TensorRecords | null => {
    const name = str(pick(t, 'name', 'tensor'));
    if (!name) return null;
    let r = byName.get(name);
    if (!r) {
      const own: Obj = {};
      for (const [k, v] of Object.entries(t)) if (k !== 'results' && k !== 'runs') own[k] = v;
      r = { name, layer: num(pick(t, 'layer')), kind: str(pick(t, 'kind')), shape: arr(pick(t, 'shape')).map(num).filter((x): x is number => x !== null), own: flatten(own), perRun: specs.map(() => null) };
      byName.set(name, r);
    }
    return r;
  };
  // Tensor-major.
  for (const t of arrOf(doc, 'tensors')) {
    if (!isObj(t)) continue;
    const r = get(t);
    if (!r) continue;
    const results = arr(pick(t, 'results', 'runs', 'tuned'));
    results.forEach((x, i) => { if (isObj(x) && i < r.perRun.length) r.perRun[i] = flatten(x); });
  }
  // Run-major.
  const runList = arrOf(doc, 'runs', 'models', 'results');
  runList.forEach((run, i) => {
    if (!isObj(run)) return;
    for (const t of arrOf(run, 'tensors')) {
      if (!isObj(t)) continue;
      const r = get(t);
      if (r && i < r.perRun.length) r.perRun[i] = flatten(t);
    }
  });
  return { specs, tensors: [...byName.values()] };
}
