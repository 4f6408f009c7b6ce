/**
 * A reference forward pass of one decoder attention block, used to check that an
 * intervention (rotation / permutation) preserves the block's function (SPEC §6).
 *
 * out = o_proj( Attn( RoPE(qn(q_proj(n(x)))), RoPE(kn(k_proj(n(x)))), v_proj(n(x)) ) )
 *
 * - n: RMSNorm with the layer's `input_layernorm` weight (x / √(mean x² + ε) · w);
 * - q/k/v biases when present (Qwen2), o bias when present;
 * - qn/kn: per-head RMSNorm over D with the shared `q_norm`/`k_norm` weight (Qwen3), applied
 *   before RoPE as in transformers' Qwen3Attention;
 * - RoPE in the Hugging Face "rotate_half" layout, inv_freq_i = θ^(−2i/D);
 * - grouped-query attention (q head h reads kv head floor(h / n_rep)), causal mask,
 *   softmax with scale 1/√D. (Sliding windows and RoPE scaling do not matter here: they act
 *   identically on both weight sets, and T is small.)
 *
 * Everything runs in fp64. The sum over heads in o_proj is order-canonical: each output
 * entry adds its H_q per-head contributions in ascending order of value, so a head
 * permutation — which computes bit-identical per-head contributions under new labels —
 * gives a bit-identical output (difference exactly 0), not one that differs by the
 * rounding of a reordered sum.
 */
import { Rng } from '../util/random.js';

export interface AttentionGeometry {
  hiddenSize: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
}

/** One layer's attention weights in PyTorch layout (row-major [out, in]), decoded to fp64. */
export interface AttentionWeights {
  q: Float64Array; k: Float64Array; v: Float64Array; o: Float64Array;
  qBias: Float64Array | null; kBias: Float64Array | null; vBias: Float64Array | null; oBias: Float64Array | null;
  qNorm: Float64Array | null; kNorm: Float64Array | null;
  /** The layer's input_layernorm weight ([hidden]); null = all ones. */
  inputNorm: Float64Array | null;
}

function rmsNorm(x: Float64Array, off: number, n: number, w: Float64Array | null, eps: number, out: Float64Array, outOff: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[off + i]! * x[off + i]!;
  const s = 1 / Math.sqrt(ss / n + eps);
  for (let i = 0; i < n; i++) out[outOff + i] = x[off + i]! * s * (w ? w[i]! : 1);
}

/** y[t, r] = Σ_j x[t, j] W[r, j] + b[r]: x [T, in], W [out, in]. */
function linear(x: Float64Array, t: number, inDim: number, w: Float64Array, outDim: number, b: Float64Array | null): Float64Array {
  const y = new Float64Array(t * outDim);
  for (let s = 0; s < t; s++) {
    for (let r = 0; r < outDim; r++) {
      let acc = 0;
      const wo = r * inDim, xo = s * inDim;
      for (let j = 0; j < inDim; j++) acc += x[xo + j]! * w[wo + j]!;
      y[s * outDim + r] = b ? acc + b[r]! : acc;
    }
  }
  return y;
}

/** Applies RoPE in place to [T, H, D] at the given positions. */
function applyRope(x: Float64Array, t: number, heads: number, d: number, positions: readonly number[], theta: number): void {
  const half = d / 2;
  const cos = new Float64Array(half), sin = new Float64Array(half);
  for (let s = 0; s < t; s++) {
    for (let i = 0; i < half; i++) {
      const a = positions[s]! * Math.pow(theta, (-2 * i) / d);
      cos[i] = Math.cos(a); sin[i] = Math.sin(a);
    }
    for (let h = 0; h < heads; h++) {
      const o = (s * heads + h) * d;
      for (let i = 0; i < half; i++) {
        const x1 = x[o + i]!, x2 = x[o + half + i]!;
        x[o + i] = x1 * cos[i]! - x2 * sin[i]!;
        x[o + half + i] = x2 * cos[i]! + x1 * sin[i]!;
      }
    }
  }
}

/**
 * The attention block's output [T, hidden] for input x [T, hidden] (the residual stream
 * before input_layernorm; the residual add itself is left out since it is the same x).
 */
export function attentionForward(w: AttentionWeights, geo: AttentionGeometry, x: Float64Array, positions: readonly number[]): Float64Array {
  const { hiddenSize: hid, numHeads: hq, numKvHeads: hkv, headDim: d } = geo;
  const t = positions.length;
  if (x.length !== t * hid) throw new Error(`attentionForward: x has ${x.length} values, expected ${t}×${hid}`);
  const nRep = hq / hkv;
  const h = new Float64Array(t * hid);
  for (let s = 0; s < t; s++) rmsNorm(x, s * hid, hid, w.inputNorm, geo.rmsNormEps, h, s * hid);
  const q = linear(h, t, hid, w.q, hq * d, w.qBias);
  const k = linear(h, t, hid, w.k, hkv * d, w.kBias);
  const v = linear(h, t, hid, w.v, hkv * d, w.vBias);
  if (w.qNorm) for (let i = 0; i < t * hq; i++) rmsNorm(q, i * d, d, w.qNorm, geo.rmsNormEps, q, i * d);
  if (w.kNorm) for (let i = 0; i < t * hkv; i++) rmsNorm(k, i * d, d, w.kNorm, geo.rmsNormEps, k, i * d);
  applyRope(q, t, hq, d, positions, geo.ropeTheta);
  applyRope(k, t, hkv, d, positions, geo.ropeTheta);

  // ctx[t, h, :] = Σ_{s ≤ t} softmax_s(q·k / √D) v[s, g(h), :]
  const ctx = new Float64Array(t * hq * d);
  const scale = 1 / Math.sqrt(d);
  const p = new Float64Array(t);
  for (let head = 0; head < hq; head++) {
    const g = Math.floor(head / nRep);
    for (let s = 0; s < t; s++) {
      let mx = -Infinity;
      for (let u = 0; u <= s; u++) {
        let acc = 0;
        const qo = (s * hq + head) * d, ko = (u * hkv + g) * d;
        for (let i = 0; i < d; i++) acc += q[qo + i]! * k[ko + i]!;
        p[u] = acc * scale;
        if (p[u]! > mx) mx = p[u]!;
      }
      let z = 0;
      for (let u = 0; u <= s; u++) { p[u] = Math.exp(p[u]! - mx); z += p[u]!; }
      const co = (s * hq + head) * d;
      for (let u = 0; u <= s; u++) {
        const a = p[u]! / z, vo = (u * hkv + g) * d;
        for (let i = 0; i < d; i++) ctx[co + i]! += a * v[vo + i]!;
      }
    }
  }

  // out[t, r] = Σ_h (Σ_i O[r, hD + i] ctx[t, h, i]), heads added in ascending order of value.
  const out = new Float64Array(t * hid);
  const contrib = new Float64Array(hq);
  const cols = hq * d;
  for (let s = 0; s < t; s++) {
    for (let r = 0; r < hid; r++) {
      for (let head = 0; head < hq; head++) {
        let acc = 0;
        const oo = r * cols + head * d, co = (s * hq + head) * d;
        for (let i = 0; i < d; i++) acc += w.o[oo + i]! * ctx[co + i]!;
        contrib[head] = acc;
      }
      contrib.sort();
      let sum = 0;
      for (let head = 0; head < hq; head++) sum += contrib[head]!;
      out[s * hid + r] = w.oBias ? sum + w.oBias[r]! : sum;
    }
  }
  return out;
}

export interface OutputDifference {
  /** max |out' − out|. */
  maxAbsDiff: number;
  /** max |out| (the scale maxAbsDiff is relative to). */
  maxAbsRef: number;
  /** maxAbsDiff / maxAbsRef. */
  relMaxDiff: number;
  /** ‖out' − out‖_F / ‖out‖_F. */
  relFrobenius: number;
}

export function compareOutputs(ref: Float64Array, got: Float64Array): OutputDifference {
  let mad = 0, mref = 0, dd = 0, rr = 0;
  for (let i = 0; i < ref.length; i++) {
    const e = got[i]! - ref[i]!;
    mad = Math.max(mad, Math.abs(e));
    mref = Math.max(mref, Math.abs(ref[i]!));
    dd += e * e; rr += ref[i]! * ref[i]!;
  }
  return { maxAbsDiff: mad, maxAbsRef: mref, relMaxDiff: mref > 0 ? mad / mref : mad, relFrobenius: rr > 0 ? Math.sqrt(dd / rr) : Math.sqrt(dd) };
}

/** Seeded random inputs: x ~ N(0, 1) of shape [T, hidden], positions 0..T−1. */
export function randomAttentionInput(hiddenSize: number, tokens: number, seed: number): { x: Float64Array; positions: number[] } {
  const x = new Float64Array(tokens * hiddenSize);
  new Rng(seed).fillNormal(x);
  return { x, positions: Array.from({ length: tokens }, (_, i) => i) };
}

/** Runs both weight sets on the same seeded inputs and compares their outputs. */
export function verifyAttentionInvariance(
  before: AttentionWeights, after: AttentionWeights, geo: AttentionGeometry, opts: { seed: number; tokens: number },
): OutputDifference {
  const { x, positions } = randomAttentionInput(geo.hiddenSize, opts.tokens, opts.seed);
  return compareOutputs(attentionForward(before, geo, x, positions), attentionForward(after, geo, x, positions));
}

/**
 * A-priori estimate of the relative Frobenius output error caused by storing the rotated
 * V and O in a float format with p significand bits (bf16: 8, f16: 11, f32: 24, f64: 53).
 * Round-to-nearest leaves an error uniform in ±ulp/2, so rms ulp/√12; for values with
 * log-uniformly spread significands ulp/|x| = 2^(1−p)/m, m ∈ [1, 2), whose rms is
 * 2^(1−p)·√(3/(8 ln 2)) ≈ 0.736·2^(1−p). Two independently rounded matrices (V and O)
 * add in quadrature: ε ≈ √2 · 0.736 · 2^(1−p) / √12 (bf16: ≈ 2.35e-3). The inputs'
 * own rounding is not counted: the reference uses the same stored input weights.
 */
export function roundingErrorEstimate(significandBits: number): number {
  return Math.SQRT2 * Math.sqrt(3 / (8 * Math.LN2)) * Math.pow(2, 1 - significandBits) / Math.sqrt(12);
}
