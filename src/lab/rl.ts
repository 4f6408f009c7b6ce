/**
 * RLVR with GRPO / DAPO on the lab task.
 *
 * Each step samples G responses for each of P prompts from the current policy, scores
 * them with the exact-match checker, normalises rewards within each group (advantage
 * (r − mean) / (std + 1e-6), std unbiased as torch.std), and takes `miniBatches` AdamW
 * steps on the token-level clipped surrogate
 *   ℓ_t = max(−A·r_t, −A·clip(r_t, 1 − ε_low, 1 + ε_high)) + β·k3_t,
 *   r_t = exp(log π(y_t) − log π_old(y_t)),  k3_t = exp(ref − logπ) − (ref − logπ) − 1,
 * aggregated per token over the mini-batch (DAPO, "token-mean") or per sequence then over
 * sequences (GRPO, "seq-mean-token-mean"). DAPO's dynamic sampling drops groups whose
 * rewards are all equal. The old log-probabilities come from the sampling pass itself,
 * which runs the same arithmetic as the training forward (so r = 1 exactly on the first
 * mini-batch). Each step logs reward, accuracy and the exact token-wise KL to the base in
 * both directions (SPEC §7), on the sampled responses.
 */
import { Rng } from '../util/random.js';
import { evaluate } from './generate.js';
import { type Arr, Decoder, type LabModelConfig, type Params, backward, forward, zerosLike } from './model.js';
import { AdamW, ADAMW_DEFAULTS } from './optim.js';
import { AdapterSet, type AdapterSpec } from './adapters.js';
import { round } from './sft.js';
import { EOS, type Problem, checkAnswer } from './tasks.js';

export type RlAlgo = 'grpo' | 'dapo';
export type LossAgg = 'token-mean' | 'seq-mean-token-mean';

export interface RlOptions {
  algo: RlAlgo;
  steps: number;
  promptsPerStep: number;
  groupSize: number;
  miniBatches: number;
  lr: number;
  weightDecay: number;
  clipLow: number;
  clipHigh: number;
  /** β of the k3 KL penalty to the reference (the base); 0 = none. */
  klCoef: number;
  lossAgg: LossAgg;
  /** Drop groups whose rewards are all equal (DAPO). */
  dynamicSampling: boolean;
  maxNew: number;
  seed: number;
  /** Log the KL to the base every this many steps (1 = every step). */
  klEvery: number;
  evalEvery: number;
  evalProblems: Problem[];
  /** Per-tensor trainable masks (1 = trainable), for sparse RL. */
  masks?: Map<string, Uint8Array>;
  /** Train low-rank adapters instead of the full weights. */
  adapter?: AdapterSpec;
  log?: (rec: Record<string, unknown>) => void;
  onStep?: (step: number, p: Params) => void;
}

/** Option presets: GRPO (symmetric clip, KL penalty, seq-mean) and DAPO (clip-higher, token-mean, no KL, dynamic sampling). */
export function rlPreset(algo: RlAlgo): Pick<RlOptions, 'algo' | 'clipLow' | 'clipHigh' | 'klCoef' | 'lossAgg' | 'dynamicSampling'> {
  return algo === 'grpo'
    ? { algo, clipLow: 0.2, clipHigh: 0.2, klCoef: 0.001, lossAgg: 'seq-mean-token-mean', dynamicSampling: false }
    : { algo, clipLow: 0.2, clipHigh: 0.28, klCoef: 0, lossAgg: 'token-mean', dynamicSampling: true };
}

/** Group-normalised advantages; `std` is the unbiased sample std (torch.std). */
export function groupAdvantages(rewards: readonly number[], groupSize: number): number[] {
  const out = new Array<number>(rewards.length).fill(0);
  for (let g = 0; g < rewards.length / groupSize; g++) {
    let mean = 0;
    for (let j = 0; j < groupSize; j++) mean += rewards[g * groupSize + j]!;
    mean /= groupSize;
    let v = 0;
    for (let j = 0; j < groupSize; j++) v += (rewards[g * groupSize + j]! - mean) ** 2;
    const std = groupSize > 1 ? Math.sqrt(v / (groupSize - 1)) : 0;
    for (let j = 0; j < groupSize; j++) out[g * groupSize + j] = (rewards[g * groupSize + j]! - mean) / (std + 1e-6);
  }
  return out;
}

/** One response token's inputs to the surrogate. */
export interface PgToken { seq: number; logp: number; oldLogp: number; refLogp: number; adv: number }

/**
 * The clipped surrogate loss and its derivative with respect to each token's log-prob.
 * `seqLen[s]` is the number of loss tokens of sequence s (for seq-mean), `nSeq` the number
 * of sequences that count.
 */
export function policyLoss(tokens: readonly PgToken[], o: { clipLow: number; clipHigh: number; klCoef: number; lossAgg: LossAgg }, seqLen: readonly number[], nSeq: number): { loss: number; dlogp: Float64Array; clipFrac: number } {
  const dlogp = new Float64Array(tokens.length);
  let loss = 0, clipped = 0;
  const nTok = tokens.length;
  tokens.forEach((t, i) => {
    const w = o.lossAgg === 'token-mean' ? 1 / nTok : 1 / (nSeq * seqLen[t.seq]!);
    const r = Math.exp(t.logp - t.oldLogp);
    const rc = Math.min(Math.max(r, 1 - o.clipLow), 1 + o.clipHigh);
    const unclipped = -t.adv * r, clippedTerm = -t.adv * rc;
    let g = 0;
    if (unclipped >= clippedTerm) { loss += w * unclipped; g = -t.adv * r; } else { loss += w * clippedTerm; clipped++; }
    if (o.klCoef > 0) {
      const d = t.refLogp - t.logp;
      loss += w * o.klCoef * (Math.exp(d) - d - 1);
      g += o.klCoef * (1 - Math.exp(d));
    }
    dlogp[i] = w * g;
  });
  return { loss, dlogp, clipFrac: nTok > 0 ? clipped / nTok : 0 };
}

/** Exact KL(p‖q) over the vocabulary from two rows of logits. */
export function klRow(lp: Float64Array, lq: Float64Array, V: number): number {
  let s = 0;
  for (let v = 0; v < V; v++) { const pv = Math.exp(lp[v]!); if (pv > 0) s += pv * (lp[v]! - lq[v]!); }
  return Math.max(0, s);
}

function logSoftmaxInto(logits: Arr, off: number, V: number, out: Float64Array): void {
  let mx = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v]! > mx) mx = logits[off + v]!;
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[off + v]! - mx);
  const lse = mx + Math.log(s);
  for (let v = 0; v < V; v++) out[v] = logits[off + v]! - lse;
}

interface Sample { problem: number; prompt: number[]; response: number[]; reward: number; logits: Float64Array /* log-probs [len, V] at sampling */ }

/** Samples G responses per prompt, keeping the sampling log-probs (the old policy). */
function rollout(c: LabModelConfig, p: Params, problems: Problem[], G: number, maxNew: number, rng: Rng): Sample[] {
  const V = c.vocabSize;
  const out: Sample[] = new Array(problems.length * G);
  const byLen = new Map<number, number[]>();
  problems.forEach((pr, i) => { const L = pr.prompt.length; if (!byLen.has(L)) byLen.set(L, []); byLen.get(L)!.push(i); });
  const probs = new Float64Array(V), lrow = new Float64Array(V);
  for (const L of [...byLen.keys()].sort((a, b) => a - b)) {
    const rows: number[] = [];
    for (const i of byLen.get(L)!) for (let j = 0; j < G; j++) rows.push(i * G + j);
    const B = rows.length;
    const dec = new Decoder(c, p, B, L + maxNew);
    const tok = new Int32Array(B);
    let logits: Arr | null = null;
    for (let t = 0; t < L; t++) {
      for (let b = 0; b < B; b++) tok[b] = problems[Math.floor(rows[b]! / G)]!.prompt[t]!;
      logits = dec.step(tok);
    }
    const resp: number[][] = rows.map(() => []);
    const lps: number[][] = rows.map(() => []);
    const done = new Uint8Array(B);
    for (let s = 0; s < maxNew; s++) {
      for (let b = 0; b < B; b++) {
        if (done[b]) { tok[b] = EOS; continue; }
        logSoftmaxInto(logits!, b * V, V, lrow);
        for (let v = 0; v < V; v++) probs[v] = Math.exp(lrow[v]!);
        const pick = rng.categorical(probs);
        resp[b]!.push(pick);
        for (let v = 0; v < V; v++) lps[b]!.push(lrow[v]!);
        if (pick === EOS) done[b] = 1;
        tok[b] = pick;
      }
      if (done.every((d) => d === 1) || s === maxNew - 1) break;
      logits = dec.step(tok);
    }
    rows.forEach((row, b) => {
      const pi = Math.floor(row / G);
      out[row] = { problem: pi, prompt: problems[pi]!.prompt, response: resp[b]!, reward: checkAnswer(resp[b]!, problems[pi]!.answer) ? 1 : 0, logits: Float64Array.from(lps[b]!) };
    });
  }
  return out;
}

function packSamples(samples: readonly Sample[]): { tokens: Int32Array; B: number; T: number } {
  let T = 0;
  for (const s of samples) T = Math.max(T, s.prompt.length + s.response.length - 1);
  const B = samples.length;
  const tokens = new Int32Array(B * T).fill(EOS);
  samples.forEach((s, b) => {
    const seq = [...s.prompt, ...s.response];
    for (let t = 0; t < T && t < seq.length; t++) tokens[b * T + t] = seq[t]!;
  });
  return { tokens, B, T };
}

/** Mean over prompts of the token-mean KL (both directions) of sampled responses. */
function klToBase(c: LabModelConfig, base: Params, samples: readonly Sample[], G: number): { fwd: number; rev: number } {
  const V = c.vocabSize;
  const { tokens, B, T } = packSamples(samples);
  const fb = forward(c, base, tokens, B, T);
  const lq = new Float64Array(V), lp = new Float64Array(V);
  let sumF = 0, sumR = 0, nPrompts = 0;
  for (let g = 0; g < B / G; g++) {
    let f = 0, r = 0, n = 0;
    for (let j = 0; j < G; j++) {
      const b = g * G + j, s = samples[b]!;
      for (let k = 0; k < s.response.length; k++) {
        const pos = b * T + s.prompt.length - 1 + k;
        logSoftmaxInto(fb.logits, pos * V, V, lq);
        for (let v = 0; v < V; v++) lp[v] = s.logits[k * V + v]!;
        f += klRow(lp, lq, V); r += klRow(lq, lp, V); n++;
      }
    }
    if (n > 0) { sumF += f / n; sumR += r / n; nPrompts++; }
  }
  return { fwd: nPrompts ? sumF / nPrompts : 0, rev: nPrompts ? sumR / nPrompts : 0 };
}

/** Runs RLVR in place on `p` (the fp32 master weights); `ref` is the frozen base. */
export function trainRl(c: LabModelConfig, p: Params, ref: Params, prompts: Problem[], o: RlOptions): void {
  const rng = new Rng(o.seed);
  const adapters = o.adapter ? new AdapterSet(c, p, o.adapter, o.seed + 1) : null;
  if (adapters) adapters.materialize(p);
  const opt = adapters
    ? new AdamW(adapters.params, { ...ADAMW_DEFAULTS, lr: o.lr, weightDecay: 0 })
    : new AdamW(p, { ...ADAMW_DEFAULTS, lr: o.lr, weightDecay: o.weightDecay }, o.masks ?? null);
  const grads = zerosLike(p);
  const adapterGrads = adapters ? zerosLike(adapters.params) : null;
  const V = c.vocabSize, G = o.groupSize;
  let order = rng.permutation(prompts.length), cursor = 0;
  for (let step = 0; step < o.steps; step++) {
    const batch: Problem[] = [];
    for (let i = 0; i < o.promptsPerStep; i++) {
      if (cursor === order.length) { order = rng.permutation(prompts.length); cursor = 0; }
      batch.push(prompts[order[cursor++]!]!);
    }
    const samples = rollout(c, p, batch, G, o.maxNew, rng);
    const rewards = samples.map((s) => s.reward);
    const adv = groupAdvantages(rewards, G);
    const rec: Record<string, unknown> = { step: step + 1 };
    rec.reward = round(rewards.reduce((a, b) => a + b, 0) / rewards.length);
    rec.accuracy = rec.reward;
    rec.response_len = round(samples.reduce((a, s) => a + s.response.length, 0) / samples.length);
    let ent = 0, nt = 0;
    for (const s of samples) for (let k = 0; k < s.response.length; k++) { for (let v = 0; v < V; v++) { const l = s.logits[k * V + v]!; ent -= Math.exp(l) * l; } nt++; }
    rec.entropy = round(ent / Math.max(1, nt));
    if (o.klEvery > 0 && step % o.klEvery === 0) {
      const kl = klToBase(c, ref, samples, G);
      rec.kl_policy_base = round(kl.fwd);
      rec.kl_base_policy = round(kl.rev);
    }
    // Groups that carry signal (all groups for GRPO; DAPO drops all-equal groups).
    const keepGroups: number[] = [];
    for (let g = 0; g < samples.length / G; g++) {
      let allSame = true;
      for (let j = 1; j < G; j++) if (rewards[g * G + j] !== rewards[g * G]) { allSame = false; break; }
      if (!(o.dynamicSampling && allSame)) keepGroups.push(g);
    }
    rec.groups_kept = keepGroups.length;
    let lossSum = 0, clipSum = 0, gnSum = 0, updates = 0;
    const mb = Math.max(1, o.miniBatches);
    const per = Math.ceil(keepGroups.length / mb);
    for (let m = 0; m < mb; m++) {
      const groups = keepGroups.slice(m * per, (m + 1) * per);
      if (groups.length === 0) continue;
      const sub: Sample[] = [], subAdv: number[] = [];
      for (const g of groups) for (let j = 0; j < G; j++) { sub.push(samples[g * G + j]!); subAdv.push(adv[g * G + j]!); }
      const { tokens, B, T } = packSamples(sub);
      const fc = forward(c, p, tokens, B, T);
      const refLp = o.klCoef > 0 ? forward(c, ref, tokens, B, T).logits : null;
      const toks: PgToken[] = [], pos: number[] = [], ys: number[] = [];
      const lrow = new Float64Array(V), rrow = new Float64Array(V);
      const seqLen = sub.map((s) => s.response.length);
      sub.forEach((s, b) => {
        for (let k = 0; k < s.response.length; k++) {
          const at = b * T + s.prompt.length - 1 + k, y = s.response[k]!;
          logSoftmaxInto(fc.logits, at * V, V, lrow);
          let refLogp = 0;
          if (refLp) { logSoftmaxInto(refLp, at * V, V, rrow); refLogp = rrow[y]!; }
          toks.push({ seq: b, logp: lrow[y]!, oldLogp: s.logits[k * V + y]!, refLogp, adv: subAdv[b]! });
          pos.push(at); ys.push(y);
        }
      });
      const pl = policyLoss(toks, o, seqLen, sub.length);
      const dlogits = new Float32Array(fc.logits.length);
      for (let i = 0; i < toks.length; i++) {
        const d = pl.dlogp[i]!;
        if (d === 0) continue;
        const at = pos[i]!;
        logSoftmaxInto(fc.logits, at * V, V, lrow);
        // ∂logπ(y)/∂logits = onehot(y) − softmax
        for (let v = 0; v < V; v++) dlogits[at * V + v] = -d * Math.exp(lrow[v]!);
        dlogits[at * V + ys[i]!] += d;
      }
      for (const g of grads.values()) g.fill(0);
      backward(c, p, fc, dlogits, grads);
      if (adapters) {
        adapters.gradients(grads, adapterGrads!);
        gnSum += opt.step(adapterGrads!, o.lr);
        adapters.materialize(p);
      } else gnSum += opt.step(grads, o.lr);
      lossSum += pl.loss; clipSum += pl.clipFrac; updates++;
    }
    rec.updates = updates;
    rec.pg_loss = round(updates ? lossSum / updates : 0);
    rec.clip_frac = round(updates ? clipSum / updates : 0);
    rec.grad_norm = round(updates ? gnSum / updates : 0);
    if (o.evalEvery > 0 && (step + 1) % o.evalEvery === 0) {
      const ev = evaluate(c, p, o.evalProblems, o.maxNew, o.seed + 7);
      rec.eval_greedy_acc = round(ev.greedy);
      rec.eval_sampled_acc = round(ev.sampled);
    }
    o.log?.(rec);
    o.onStep?.(step + 1, p);
  }
}
