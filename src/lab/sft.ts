/**
 * Supervised training (pretraining and SFT): next-token cross-entropy on answer tokens
 * only, AdamW on fp32 master weights, a JSONL log per step.
 */
import { Rng } from '../util/random.js';
import { evaluate } from './generate.js';
import { type Arr, type LabModelConfig, type Params, backward, forward, zerosLike } from './model.js';
import { AdamW, ADAMW_DEFAULTS, lrAt } from './optim.js';
import { EOS, type Example, type Mixture, type Problem, makeExample, sampleFromMixture } from './tasks.js';

export interface PackedBatch { tokens: Int32Array; targets: Int32Array; B: number; T: number }

/** Packs prompt+target sequences, right-padded with the end token; targets −1 = no loss. */
export function packExamples(ex: readonly Example[], padId: number): PackedBatch {
  const B = ex.length;
  let T = 0;
  for (const e of ex) T = Math.max(T, e.prompt.length + e.target.length - 1);
  const tokens = new Int32Array(B * T).fill(padId), targets = new Int32Array(B * T).fill(-1);
  ex.forEach((e, b) => {
    const seq = [...e.prompt, ...e.target];
    for (let t = 0; t < T && t < seq.length; t++) tokens[b * T + t] = seq[t]!;
    for (let j = 0; j < e.target.length; j++) targets[b * T + e.prompt.length - 1 + j] = e.target[j]!;
  });
  return { tokens, targets, B, T };
}

/** Mean cross-entropy over target positions; fills dlogits (same array type as logits). */
export function crossEntropy(logits: Arr, targets: Int32Array, V: number, dlogits: Arr): { loss: number; count: number } {
  let count = 0;
  for (let n = 0; n < targets.length; n++) if (targets[n]! >= 0) count++;
  let loss = 0;
  const inv = count > 0 ? 1 / count : 0;
  for (let n = 0; n < targets.length; n++) {
    const y = targets[n]!;
    if (y < 0) continue;
    const o = n * V;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v]! > mx) mx = logits[o + v]!;
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[o + v]! - mx);
    const lse = mx + Math.log(s);
    loss += lse - logits[o + y]!;
    for (let v = 0; v < V; v++) dlogits[o + v] = Math.exp(logits[o + v]! - lse) * inv;
    dlogits[o + y] -= inv;
  }
  return { loss: loss * inv, count };
}

export interface SupervisedOptions {
  steps: number;
  batchSize: number;
  lr: number;
  warmup: number;
  cosine: boolean;
  weightDecay: number;
  /** Fraction of answers corrupted (pretraining noise). */
  corruptProb: number;
  seed: number;
  /** Evaluate every this many steps (0 = only at the end). */
  evalEvery: number;
  evalProblems: Problem[];
  maxNew: number;
  /** Called with each log record (one JSON object per step/eval). */
  log?: (rec: Record<string, unknown>) => void;
  /** Called after step s (1-based) — for intermediate checkpoints. */
  onStep?: (step: number, p: Params) => void;
  /** A fixed dataset to cycle through (SFT); otherwise fresh samples from the mixture. */
  dataset?: Example[];
}

/** Trains `p` in place on the mixture (or the dataset). */
export function trainSupervised(c: LabModelConfig, p: Params, mix: Mixture, o: SupervisedOptions): void {
  const rng = new Rng(o.seed);
  const opt = new AdamW(p, { ...ADAMW_DEFAULTS, lr: o.lr, weightDecay: o.weightDecay });
  const grads = zerosLike(p);
  const order = o.dataset ? rng.permutation(o.dataset.length) : null;
  let cursor = 0;
  for (let step = 0; step < o.steps; step++) {
    const ex: Example[] = [];
    for (let i = 0; i < o.batchSize; i++) {
      if (o.dataset) {
        ex.push(o.dataset[order![cursor % order!.length]!]!);
        cursor++;
      } else ex.push(makeExample(sampleFromMixture(mix, rng), rng, o.corruptProb));
    }
    const batch = packExamples(ex, EOS);
    const cache = forward(c, p, batch.tokens, batch.B, batch.T);
    const dlogits = new Float32Array(cache.logits.length);
    const { loss } = crossEntropy(cache.logits, batch.targets, c.vocabSize, dlogits);
    for (const g of grads.values()) g.fill(0);
    backward(c, p, cache, dlogits, grads);
    const lr = lrAt(step, o.steps, o.lr, o.warmup, o.cosine);
    const gnorm = opt.step(grads, lr);
    const rec: Record<string, unknown> = { step: step + 1, loss: round(loss), lr: round(lr), grad_norm: round(gnorm) };
    if ((o.evalEvery > 0 && (step + 1) % o.evalEvery === 0) || step + 1 === o.steps) {
      const ev = evaluate(c, p, o.evalProblems, o.maxNew, o.seed + 7);
      rec.eval_greedy_acc = round(ev.greedy);
      rec.eval_sampled_acc = round(ev.sampled);
    }
    o.log?.(rec);
    o.onStep?.(step + 1, p);
  }
}

/** Rounds for logs (6 significant digits) so logs are short and stable. */
export function round(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(6)) : x;
}
