/**
 * Function-preserving V/O rotation of one attention layer (SPEC §6, paper App. D,
 * Intervention 1).
 *
 * For each kv head g an orthogonal `R_g ∈ R^{D×D}` is drawn, and in PyTorch layout
 * (`v_proj` [H_kv·D, hidden], `o_proj` [hidden, H_q·D]):
 *
 *   V_g ← R_gᵀ V_g        (row block g of v_proj)
 *   b_g ← R_gᵀ b_g        (its bias block, Qwen2)
 *   O_h ← O_h R_{g(h)}    (column block h of o_proj, g(h) = floor(h / n_rep))
 *
 * Every value vector of head g is then `R_gᵀ v`, attention mixes value vectors linearly,
 * so each head's context is `R_gᵀ ctx` and `O_h R_g R_gᵀ ctx = O_h ctx`: the block output
 * is unchanged in exact arithmetic. Q and K are never rotated (RoPE would not commute).
 *
 * Rotations are drawn in fp64: Haar via QR of a Gaussian with the sign fix (Mezzadri
 * 2007: Q·diag(sign(diag R)), which Gram–Schmidt gives directly since its R has a positive
 * diagonal), or the normalized Sylvester–Hadamard matrix H/√D when D is a power of 2 (the
 * same matrix for every head and independent of the seed).
 *
 * Reproducibility: the rotations of layer L are drawn from
 * `new Rng(layerSeed(seed, L, ROTATION_TAG))`, for g = 0..H_kv−1 in order, each from D·D
 * normals filled row-major; `drawRotations` regenerates them exactly.
 */
import { Rng } from '../util/random.js';

export type RotationKind = 'haar' | 'hadamard';

/** Tags mixed into per-layer seeds so rotations and permutations use separate streams. */
export const ROTATION_TAG = 0x524f5421; // 'ROT!'
export const PERMUTATION_TAG = 0x5045524d; // 'PERM'

/** The 32-bit seed of one layer's stream: seed ⊕ (layer+1)·0x9E3779B1 ⊕ tag. */
export function layerSeed(seed: number, layer: number, tag: number): number {
  return ((seed >>> 0) ^ Math.imul(layer + 1, 0x9e3779b1) ^ tag) >>> 0;
}

/**
 * Q factor of a square D×D matrix (row-major, fp64) with the positive-diagonal-R
 * convention, by modified Gram–Schmidt applied twice ("twice is enough", Giraud et al.
 * 2005), which keeps ‖QᵀQ − I‖ at the level of fp64 rounding. Returns Q row-major.
 * Throws on a (numerically) rank-deficient input, which a Gaussian draw never is.
 */
export function orthonormalize(a: Float64Array, d: number): Float64Array {
  // Work on columns: col[j][i] = a[i*d + j].
  const cols: Float64Array[] = [];
  for (let j = 0; j < d; j++) {
    const c = new Float64Array(d);
    for (let i = 0; i < d; i++) c[i] = a[i * d + j]!;
    cols.push(c);
  }
  for (let j = 0; j < d; j++) {
    const v = cols[j]!;
    const before = Math.sqrt(dot(v, v));
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        const q = cols[p]!;
        const r = dot(q, v);
        for (let i = 0; i < d; i++) v[i]! -= r * q[i]!;
      }
    }
    const n = Math.sqrt(dot(v, v));
    if (!(n > 1e-10 * before) || !Number.isFinite(n)) throw new Error(`orthonormalize: column ${j} is linearly dependent`);
    for (let i = 0; i < d; i++) v[i]! /= n;
  }
  const q = new Float64Array(d * d);
  for (let j = 0; j < d; j++) for (let i = 0; i < d; i++) q[i * d + j] = cols[j]![i]!;
  return q;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** A Haar-distributed D×D orthogonal matrix (row-major fp64) from `rng`. */
export function haarOrthogonal(d: number, rng: Rng): Float64Array {
  const g = new Float64Array(d * d);
  rng.fillNormal(g);
  return orthonormalize(g, d);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** The normalized Sylvester–Hadamard matrix H_D/√D (symmetric, orthogonal), D a power of 2. */
export function hadamardOrthogonal(d: number): Float64Array {
  if (!isPowerOfTwo(d)) throw new Error(`hadamardOrthogonal: ${d} is not a power of 2`);
  const h = new Float64Array(d * d);
  const s = 1 / Math.sqrt(d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      // H[i][j] = (−1)^{popcount(i & j)} for the Sylvester construction.
      let x = i & j, par = 0;
      while (x) { par ^= x & 1; x >>>= 1; }
      h[i * d + j] = par ? -s : s;
    }
  }
  return h;
}

/**
 * The rotations of one layer: `numKvHeads` D×D row-major matrices. With `shared`, one
 * matrix is drawn and used for every kv head (the paper's App. D form, R_kv = diag(R,…,R)).
 */
export function drawRotations(
  kind: RotationKind, seed: number, layer: number, numKvHeads: number, headDim: number, shared = false,
): Float64Array[] {
  if (kind === 'hadamard') {
    const h = hadamardOrthogonal(headDim);
    return Array.from({ length: numKvHeads }, () => h);
  }
  const rng = new Rng(layerSeed(seed, layer, ROTATION_TAG));
  const out: Float64Array[] = [];
  for (let g = 0; g < numKvHeads; g++) out.push(shared && g > 0 ? out[0]! : haarOrthogonal(headDim, rng));
  return out;
}

/** max |RᵀR − I| of a D×D row-major matrix (a check, reported in metadata). */
export function orthogonalityError(r: Float64Array, d: number): number {
  let worst = 0;
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += r[k * d + i]! * r[k * d + j]!;
      worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

/**
 * V/O rotation in fp64, returning new arrays (inputs untouched).
 * `v`: [H_kv·D, hidden] row-major; `vBias`: [H_kv·D] or null; `o`: [hidden, H_q·D].
 */
export function rotateVO(
  v: Float64Array, vBias: Float64Array | null, o: Float64Array,
  rotations: readonly Float64Array[], layout: { hiddenSize: number; numHeads: number; numKvHeads: number; headDim: number },
): { v: Float64Array; vBias: Float64Array | null; o: Float64Array } {
  const { hiddenSize: hid, numHeads, numKvHeads, headDim: d } = layout;
  const nRep = numHeads / numKvHeads;
  if (rotations.length !== numKvHeads) throw new Error(`rotateVO: ${rotations.length} rotations for ${numKvHeads} kv heads`);
  const nv = new Float64Array(v.length);
  const nb = vBias ? new Float64Array(vBias.length) : null;
  for (let g = 0; g < numKvHeads; g++) {
    const r = rotations[g]!;
    // V_g ← R_gᵀ V_g: new row (gD + i) = Σ_k R[k][i] · old row (gD + k).
    for (let i = 0; i < d; i++) {
      const dst = (g * d + i) * hid;
      for (let k = 0; k < d; k++) {
        const c = r[k * d + i]!;
        if (c === 0) continue;
        const src = (g * d + k) * hid;
        for (let j = 0; j < hid; j++) nv[dst + j]! += c * v[src + j]!;
      }
      if (vBias && nb) {
        let s = 0;
        for (let k = 0; k < d; k++) s += r[k * d + i]! * vBias[g * d + k]!;
        nb[g * d + i] = s;
      }
    }
  }
  const cols = numHeads * d;
  const no = new Float64Array(o.length);
  for (let h = 0; h < numHeads; h++) {
    const r = rotations[Math.floor(h / nRep)]!;
    // O_h ← O_h R: new O[row][hD + j] = Σ_k O[row][hD + k] · R[k][j].
    for (let row = 0; row < hid; row++) {
      const base = row * cols + h * d;
      for (let j = 0; j < d; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += o[base + k]! * r[k * d + j]!;
        no[base + j] = s;
      }
    }
  }
  return { v: nv, vBias: nb, o: no };
}
