/**
 * Exact head permutation of one attention layer (SPEC §6, paper App. D, Intervention 2).
 *
 * A permutation π of the H_kv kv heads moves row blocks (D rows each) of `k_proj` and
 * `v_proj` (and their biases) from g to π(g); query heads move with their group,
 * h = g·n_rep + j → π(g)·n_rep + j, for `q_proj` rows (and bias) and `o_proj` columns.
 * Every head computes exactly what it computed before, only under a new label, so the
 * block function is unchanged. Per-head-dim norms (Qwen3 `q_norm`, `k_norm`, shape [D])
 * are shared by all heads and stay as they are.
 *
 * The permutation moves raw bytes, so it is bit-exact for every dtype, and applying
 * `inversePermutation(π)` restores the input bit for bit.
 *
 * π is drawn from `new Rng(layerSeed(seed, L, PERMUTATION_TAG))` as a uniformly random
 * derangement (no kv head stays in place: Fisher–Yates draws repeated until none is fixed),
 * because a permutation that leaves heads where they were scrambles nothing — with the
 * 2 kv heads of a 1.5B Qwen a plain random permutation would be the identity half the time.
 */
import { Rng } from '../util/random.js';
import { PERMUTATION_TAG, layerSeed } from './rotate.js';

/** A uniformly random derangement of 0..n-1 (n ≥ 2). */
export function randomDerangement(n: number, rng: Rng): number[] {
  if (n < 2) throw new Error(`randomDerangement: needs at least 2 elements, got ${n}`);
  for (;;) {
    const p = rng.permutation(n);
    if (p.every((v, i) => v !== i)) return p;
  }
}

/** The kv-head permutation of layer `layer` for `seed` (see module header). */
export function drawPermutation(seed: number, layer: number, numKvHeads: number): number[] {
  return randomDerangement(numKvHeads, new Rng(layerSeed(seed, layer, PERMUTATION_TAG)));
}

export function inversePermutation(p: readonly number[]): number[] {
  const inv = new Array<number>(p.length);
  p.forEach((v, i) => { inv[v] = i; });
  return inv;
}

/** True when `p` is a permutation of 0..n-1. */
export function isPermutation(p: readonly number[], n: number): boolean {
  if (p.length !== n) return false;
  const seen = new Uint8Array(n);
  for (const v of p) {
    if (!Number.isInteger(v) || v < 0 || v >= n || seen[v]) return false;
    seen[v] = 1;
  }
  return true;
}

/** The query-head permutation induced by a kv-head permutation: g·n_rep + j → π(g)·n_rep + j. */
export function expandToQueryHeads(kvPerm: readonly number[], nRep: number): number[] {
  const q: number[] = new Array<number>(kvPerm.length * nRep);
  for (let g = 0; g < kvPerm.length; g++) for (let j = 0; j < nRep; j++) q[g * nRep + j] = kvPerm[g]! * nRep + j;
  return q;
}

/**
 * Moves row block h (blockRows rows of rowBytes bytes) to position perm[h]. Works for
 * 2-D weights (head axis = rows) and 1-D biases (rowBytes = itemsize).
 */
export function permuteRowBlocks(bytes: Uint8Array, perm: readonly number[], blockBytes: number): Uint8Array {
  if (bytes.byteLength !== perm.length * blockBytes) {
    throw new Error(`permuteRowBlocks: ${bytes.byteLength} bytes is not ${perm.length} blocks of ${blockBytes}`);
  }
  const out = new Uint8Array(bytes.byteLength);
  for (let h = 0; h < perm.length; h++) {
    out.set(bytes.subarray(h * blockBytes, (h + 1) * blockBytes), perm[h]! * blockBytes);
  }
  return out;
}

/**
 * Moves column block h of every row to column block perm[h] (o_proj: head axis = columns).
 * `rows` rows, each of perm.length blocks of `blockBytes` bytes.
 */
export function permuteColumnBlocks(bytes: Uint8Array, perm: readonly number[], rows: number, blockBytes: number): Uint8Array {
  const rowBytes = perm.length * blockBytes;
  if (bytes.byteLength !== rows * rowBytes) {
    throw new Error(`permuteColumnBlocks: ${bytes.byteLength} bytes is not ${rows} rows of ${rowBytes}`);
  }
  const out = new Uint8Array(bytes.byteLength);
  for (let r = 0; r < rows; r++) {
    const base = r * rowBytes;
    for (let h = 0; h < perm.length; h++) {
      out.set(bytes.subarray(base + h * blockBytes, base + (h + 1) * blockBytes), base + perm[h]! * blockBytes);
    }
  }
  return out;
}
