/**
 * The lab's task with a verifiable reward: character-level integer arithmetic
 * ("^37+58=" → "95."), an exact-match checker, and the corpora built from it.
 *
 * Operands are zero-padded to the task's digit count, so every prompt of a task has the
 * same length and a rollout batch decodes in lockstep. The answer is the plain decimal
 * result (no padding, '-' for negatives) followed by the end token.
 */
import { Rng } from '../util/random.js';

/** Vocabulary: digits 0–9, + - * =, end (rendered '.'), begin (rendered '^'). */
export const VOCAB = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '-', '*', '=', '.', '^'] as const;
export const EOS = 14;
export const BOS = 15;
export const VOCAB_SIZE = VOCAB.length;

export function encode(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    const i = (VOCAB as readonly string[]).indexOf(ch);
    if (i < 0) throw new Error(`character ${JSON.stringify(ch)} is not in the lab vocabulary`);
    out.push(i);
  }
  return out;
}

export function decode(tokens: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < tokens.length; i++) s += VOCAB[tokens[i]!] ?? '?';
  return s;
}

export type Op = '+' | '-' | '*';

/** A family of prompts: operation and operand digit counts. */
export interface TaskSpec { op: Op; digitsA: number; digitsB: number }

export interface Problem { a: number; b: number; op: Op; prompt: number[]; answer: string }

export function taskName(t: TaskSpec): string {
  const n = t.op === '+' ? 'add' : t.op === '-' ? 'sub' : 'mul';
  return `${n}${t.digitsA}x${t.digitsB}`;
}

export function parseTask(s: string): TaskSpec {
  const m = /^(add|sub|mul)(\d)x(\d)$/.exec(s);
  if (!m) throw new Error(`unknown task ${JSON.stringify(s)} (expected e.g. add2x2, sub2x2, mul2x1)`);
  const op: Op = m[1] === 'add' ? '+' : m[1] === 'sub' ? '-' : '*';
  return { op, digitsA: Number(m[2]), digitsB: Number(m[3]) };
}

export function answerOf(a: number, b: number, op: Op): string {
  return String(op === '+' ? a + b : op === '-' ? a - b : a * b);
}

export function makeProblem(t: TaskSpec, a: number, b: number): Problem {
  const text = '^' + String(a).padStart(t.digitsA, '0') + t.op + String(b).padStart(t.digitsB, '0') + '=';
  return { a, b, op: t.op, prompt: encode(text), answer: answerOf(a, b, t.op) };
}

export function sampleProblem(t: TaskSpec, rng: Rng): Problem {
  return makeProblem(t, rng.int(10 ** t.digitsA), rng.int(10 ** t.digitsB));
}

export function promptLength(t: TaskSpec): number { return t.digitsA + t.digitsB + 3; }

/** Longest answer (digits + sign) the task can produce, plus the end token. */
export function maxAnswerTokens(t: TaskSpec): number {
  const A = 10 ** t.digitsA - 1, B = 10 ** t.digitsB - 1;
  const worst = Math.max(answerOf(A, B, t.op).length, answerOf(0, B, t.op).length);
  return worst + 1;
}

/**
 * The verifiable reward: 1 iff the response, up to the first end token, is exactly the
 * answer. A response without an end token (truncated) is wrong; leading zeros, '+'
 * signs, "-0" and trailing garbage before the end token are wrong; tokens after it are ignored.
 */
export function checkAnswer(response: ArrayLike<number>, answer: string): boolean {
  let s = '';
  for (let i = 0; i < response.length; i++) {
    const t = response[i]!;
    if (t === EOS) return s === answer;
    s += VOCAB[t] ?? '?';
  }
  return false;
}

/**
 * A supervised example: prompt + target answer tokens (with end token). `corrupt` replaces
 * one answer digit by a different random digit — the pretraining noise that leaves the
 * base knowing the answer but unreliable when sampling (so RL has signal).
 */
export interface Example { prompt: number[]; target: number[] }

export function makeExample(p: Problem, rng: Rng, corruptProb: number): Example {
  let ans = p.answer;
  if (corruptProb > 0 && rng.uniform() < corruptProb) {
    const digitPos: number[] = [];
    for (let i = 0; i < ans.length; i++) if (ans[i] !== '-') digitPos.push(i);
    const i = digitPos[rng.int(digitPos.length)]!;
    const old = Number(ans[i]);
    const repl = (old + 1 + rng.int(9)) % 10;
    ans = ans.slice(0, i) + String(repl) + ans.slice(i + 1);
  }
  return { prompt: p.prompt, target: [...encode(ans), EOS] };
}

/** A mixture of tasks with weights. */
export interface Mixture { tasks: TaskSpec[]; weights: number[] }

export function mixture(spec: string): Mixture {
  // "add2x2:1,sub2x2:1"
  const tasks: TaskSpec[] = [], weights: number[] = [];
  for (const part of spec.split(',')) {
    const [name, w] = part.split(':');
    tasks.push(parseTask(name!.trim()));
    weights.push(w === undefined ? 1 : Number(w));
  }
  return { tasks, weights };
}

export function sampleFromMixture(m: Mixture, rng: Rng): Problem {
  const t = m.tasks[m.tasks.length === 1 ? 0 : rng.categorical(m.weights)]!;
  return sampleProblem(t, rng);
}

/** A fixed prompt set (for RL or evaluation), deterministic under the seed. */
export function promptSet(m: Mixture, n: number, seed: number): Problem[] {
  const rng = new Rng(seed);
  const out: Problem[] = [];
  for (let i = 0; i < n; i++) out.push(sampleFromMixture(m, rng));
  return out;
}
