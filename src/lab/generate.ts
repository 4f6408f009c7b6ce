/**
 * Sampling responses from the lab model (KV-cached, prompts of one length decoded in
 * lockstep), and evaluation of accuracy with the exact-match checker.
 */
import { Rng } from '../util/random.js';
import { Decoder, type LabModelConfig, type Params } from './model.js';
import { EOS, type Problem, checkAnswer } from './tasks.js';

export interface Rollout {
  /** Index of the problem in the given list. */
  problem: number;
  /** Response tokens including the end token (if produced). */
  response: number[];
  reward: number;
}

/**
 * Samples `g` responses per problem (temperature 1; `greedy` takes the argmax), at most
 * `maxNew` tokens each. Problems are grouped by prompt length; the order of the returned
 * rollouts is problem-major, sample-minor. Deterministic under `rng`.
 */
export function sampleResponses(c: LabModelConfig, p: Params, problems: Problem[], g: number, maxNew: number, rng: Rng, greedy = false, chunk = 256): Rollout[] {
  const out: Rollout[] = new Array(problems.length * g);
  const byLen = new Map<number, number[]>();
  problems.forEach((pr, i) => {
    const L = pr.prompt.length;
    if (!byLen.has(L)) byLen.set(L, []);
    byLen.get(L)!.push(i);
  });
  const lens = [...byLen.keys()].sort((a, b) => a - b);
  const V = c.vocabSize;
  const probs = new Float64Array(V);
  for (const L of lens) {
    const rows: number[] = [];
    for (const i of byLen.get(L)!) for (let j = 0; j < g; j++) rows.push(i * g + j);
    for (let start = 0; start < rows.length; start += chunk) {
      const ids = rows.slice(start, start + chunk);
      const B = ids.length;
      const dec = new Decoder(c, p, B, L + maxNew);
      const tok = new Int32Array(B);
      let logits = null as Float32Array | Float64Array | null;
      for (let t = 0; t < L; t++) {
        for (let b = 0; b < B; b++) tok[b] = problems[Math.floor(ids[b]! / g)]!.prompt[t]!;
        logits = dec.step(tok);
      }
      const resp: number[][] = ids.map(() => []);
      const done = new Uint8Array(B);
      for (let s = 0; s < maxNew; s++) {
        for (let b = 0; b < B; b++) {
          const o = b * V;
          let pick = 0;
          if (greedy) {
            for (let v = 1; v < V; v++) if (logits![o + v]! > logits![o + pick]!) pick = v;
          } else {
            let mx = -Infinity;
            for (let v = 0; v < V; v++) if (logits![o + v]! > mx) mx = logits![o + v]!;
            for (let v = 0; v < V; v++) probs[v] = Math.exp(logits![o + v]! - mx);
            pick = rng.categorical(probs);
          }
          if (!done[b]) { resp[b]!.push(pick); if (pick === EOS) done[b] = 1; }
          tok[b] = done[b] ? EOS : pick;
        }
        let all = true;
        for (let b = 0; b < B; b++) if (!done[b]) { all = false; break; }
        if (all || s === maxNew - 1) break;
        logits = dec.step(tok);
      }
      ids.forEach((row, b) => {
        const pi = Math.floor(row / g);
        out[row] = { problem: pi, response: resp[b]!, reward: checkAnswer(resp[b]!, problems[pi]!.answer) ? 1 : 0 };
      });
    }
  }
  return out;
}

/** Greedy and sampled (mean over `g` samples) accuracy on a problem set. */
export function evaluate(c: LabModelConfig, p: Params, problems: Problem[], maxNew: number, seed: number, g = 4): { greedy: number; sampled: number } {
  const gr = sampleResponses(c, p, problems, 1, maxNew, new Rng(seed), true);
  const sa = sampleResponses(c, p, problems, g, maxNew, new Rng(seed));
  const mean = (r: Rollout[]): number => r.reduce((a, x) => a + x.reward, 0) / r.length;
  return { greedy: mean(gr), sampled: mean(sa) };
}
