/**
 * AdamW with fp32 master weights and fp32 moments (as verl / PyTorch keep them), decoupled
 * weight decay, optional per-entry trainable masks (sparse fine-tuning: masked-out entries
 * are frozen entirely, weight decay included), and global-norm gradient clipping.
 */
import type { Arr, Params } from './model.js';

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip (0 = off). */
  clipNorm: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, clipNorm: 1 };

/** Names that get no weight decay (norm gains and biases, as is customary). */
function noDecay(name: string): boolean {
  return name.endsWith('norm.weight') || name.endsWith('.bias');
}

export class AdamW {
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();
  t = 0;
  constructor(readonly params: Params, public opts: AdamWOptions, readonly masks: Map<string, Uint8Array> | null = null) {
    for (const [k, p] of params) { this.m.set(k, new Float32Array(p.length)); this.v.set(k, new Float32Array(p.length)); }
  }

  /** Global L2 norm of the gradients (fixed name order, fp64 accumulation). */
  static gradNorm(grads: Params): number {
    let s = 0;
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
    return Math.sqrt(s);
  }

  /** One update with learning rate `lr` (defaults to opts.lr); returns the pre-clip grad norm. */
  step(grads: Params, lr = this.opts.lr): number {
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.opts;
    // Masked-out entries contribute no gradient, so the clip norm only sees trainable ones.
    if (this.masks) for (const [k, g] of grads) { const mk = this.masks.get(k); if (mk) for (let i = 0; i < g.length; i++) if (!mk[i]) g[i] = 0; }
    const norm = AdamW.gradNorm(grads);
    const coef = clipNorm > 0 && norm > clipNorm ? clipNorm / (norm + 1e-6) : 1;
    this.t++;
    const bc1 = 1 - Math.pow(beta1, this.t), bc2 = 1 - Math.pow(beta2, this.t);
    for (const [k, p] of this.params) {
      const g = grads.get(k)!, m = this.m.get(k)!, v = this.v.get(k)!;
      const mk = this.masks?.get(k) ?? null;
      const wd = noDecay(k) ? 0 : weightDecay;
      updateTensor(p, g, m, v, mk, lr, beta1, beta2, eps, wd, coef, bc1, bc2);
    }
    return norm;
  }
}

function updateTensor(p: Arr, g: Arr, m: Float32Array, v: Float32Array, mk: Uint8Array | null, lr: number, beta1: number, beta2: number, eps: number, wd: number, coef: number, bc1: number, bc2: number): void {
  for (let i = 0; i < p.length; i++) {
    if (mk && !mk[i]) continue;
    const gi = g[i]! * coef;
    const mi = (m[i] = beta1 * m[i]! + (1 - beta1) * gi);
    const vi = (v[i] = beta2 * v[i]! + (1 - beta2) * gi * gi);
    // PyTorch AdamW: decay first (p *= 1 - lr·wd), then the Adam step.
    const pd = p[i]! * (1 - lr * wd);
    p[i] = pd - lr * (mi / bc1) / (Math.sqrt(vi / bc2) + eps);
  }
}

/** Linear warmup then cosine decay to `minRatio`·lr (or constant when `cosine` is false). */
export function lrAt(step: number, total: number, lr: number, warmup: number, cosine: boolean, minRatio = 0.1): number {
  if (warmup > 0 && step < warmup) return lr * (step + 1) / warmup;
  if (!cosine) return lr;
  const prog = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return lr * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * prog)));
}
