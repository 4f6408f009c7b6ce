/**
 * Low-rank adapters for lab training (paper §5.2, Figs. 10–11): LoRA, PiSSA (adapter on the
 * top-r singular directions of W0) and MiLoRA (the bottom-r ones). The effective weight is
 * W = W_res + s·B·A; training updates only A [r, in] and B [out, r], with gradients
 * dA = s·Bᵀ·dW and dB = s·dW·Aᵀ from the full-weight gradient dW. Checkpoints store the
 * merged W, so every probe reads an adapter run like any other.
 */
import { exactSVD } from '../linalg/svd-dense.js';
import { Rng } from '../util/random.js';
import type { LabModelConfig, Params } from './model.js';

export type AdapterKind = 'lora' | 'pissa' | 'milora';

export interface AdapterSpec {
  kind: AdapterKind;
  rank: number;
  /** LoRA scaling numerator (s = alpha / rank); PiSSA and MiLoRA use s = 1. */
  alpha?: number;
}

interface Slot { name: string; out: number; in: number; res: Float32Array }

export class AdapterSet {
  /** The trainable tensors, `<weight>.lora_A` / `<weight>.lora_B`. */
  readonly params: Params = new Map();
  private readonly slots: Slot[] = [];
  readonly scale: number;

  /** Builds adapters on every 2-D linear weight of the decoder layers of `p` (fp32 master). */
  constructor(c: LabModelConfig, p: Params, readonly spec: AdapterSpec, seed: number) {
    const r = spec.rank;
    this.scale = spec.kind === 'lora' ? (spec.alpha ?? 2 * r) / r : 1;
    const rng = new Rng(seed);
    for (let l = 0; l < c.numLayers; l++) {
      for (const [mod, out, inn] of [
        ['self_attn.q_proj', c.numHeads * c.headDim, c.hiddenSize], ['self_attn.k_proj', c.numKvHeads * c.headDim, c.hiddenSize],
        ['self_attn.v_proj', c.numKvHeads * c.headDim, c.hiddenSize], ['self_attn.o_proj', c.hiddenSize, c.numHeads * c.headDim],
        ['mlp.gate_proj', c.intermediateSize, c.hiddenSize], ['mlp.up_proj', c.intermediateSize, c.hiddenSize], ['mlp.down_proj', c.hiddenSize, c.intermediateSize],
      ] as const) {
        const name = `model.layers.${l}.${mod}.weight`;
        const W0 = p.get(name)!;
        const A = new Float32Array(r * inn), B = new Float32Array(out * r);
        const res = Float32Array.from(W0);
        if (spec.kind === 'lora') {
          rng.fillNormal(A, 1 / Math.sqrt(inn));
        } else {
          const svd = exactSVD({ rows: out, cols: inn, data: Float64Array.from(W0) });
          const k = svd.S.length;
          const idx = spec.kind === 'pissa' ? Array.from({ length: r }, (_, i) => i) : Array.from({ length: r }, (_, i) => k - r + i);
          idx.forEach((j, t) => {
            const sq = Math.sqrt(svd.S[j]!);
            for (let i = 0; i < inn; i++) A[t * inn + i] = sq * svd.V.data[i * svd.V.cols + j]!;
            for (let o = 0; o < out; o++) B[o * r + t] = sq * svd.U.data[o * svd.U.cols + j]!;
          });
          // W_res = W0 − B·A (fp64 product, stored fp32)
          for (let o = 0; o < out; o++) for (let i = 0; i < inn; i++) {
            let s = 0;
            for (let t = 0; t < r; t++) s += B[o * r + t]! * A[t * inn + i]!;
            res[o * inn + i] = W0[o * inn + i]! - s;
          }
        }
        this.params.set(name + '.lora_A', A);
        this.params.set(name + '.lora_B', B);
        this.slots.push({ name, out, in: inn, res });
      }
    }
  }

  /** W = W_res + s·B·A into `p`. */
  materialize(p: Params): void {
    const r = this.spec.rank, s = this.scale;
    for (const sl of this.slots) {
      const A = this.params.get(sl.name + '.lora_A')!, B = this.params.get(sl.name + '.lora_B')!, W = p.get(sl.name)!;
      for (let o = 0; o < sl.out; o++) for (let i = 0; i < sl.in; i++) {
        let acc = 0;
        for (let t = 0; t < r; t++) acc += B[o * r + t]! * A[t * sl.in + i]!;
        W[o * sl.in + i] = sl.res[o * sl.in + i]! + s * acc;
      }
    }
  }

  /** Adapter gradients from full-weight gradients. */
  gradients(full: Params, into: Params): void {
    const r = this.spec.rank, s = this.scale;
    for (const sl of this.slots) {
      const A = this.params.get(sl.name + '.lora_A')!, B = this.params.get(sl.name + '.lora_B')!, dW = full.get(sl.name)!;
      const dA = into.get(sl.name + '.lora_A')!, dB = into.get(sl.name + '.lora_B')!;
      dA.fill(0); dB.fill(0);
      for (let o = 0; o < sl.out; o++) for (let i = 0; i < sl.in; i++) {
        const g = dW[o * sl.in + i]! * s;
        if (g === 0) continue;
        for (let t = 0; t < r; t++) { dA[t * sl.in + i] += B[o * r + t]! * g; dB[o * r + t] += g * A[t * sl.in + i]!; }
      }
    }
  }
}
