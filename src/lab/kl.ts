/**
 * Token-wise KL between a tuned policy π+ and its base π0 on a prompt set (SPEC §7), for
 * real Hugging Face checkpoints: both directions, exact over the vocabulary at each
 * response position, averaged over a prompt's response tokens and then over prompts. The
 * responses are given, or sampled from π+ (seeded, temperature 1, full recompute per new
 * token with streamed weights — slow on large models; give responses there).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { FormatError, RlvrError } from '../errors.js';
import { openCheckpoint, type TensorSource } from '../io/checkpoint.js';
import { Rng } from '../util/random.js';
import { hfDecoderConfig, type HfDecoderConfig, streamingLogProbs } from './hfmodel.js';
import { klRow } from './rl.js';

export interface PromptItem { prompt: string; response?: string }

/** Reads prompts: `.jsonl` with {"prompt", "response"?} per line, or plain text (one prompt per line). */
export function readPrompts(file: string): PromptItem[] {
  let text: string;
  try { text = fs.readFileSync(file, 'utf8'); } catch (e) { throw new RlvrError(`cannot read prompts: ${(e as Error).message}`, { file, code: 'E_IO' }); }
  const lines = text.split('\n').filter((l) => l.trim().length > 0);
  if (lines.length === 0) throw new FormatError(file, 'E_PROMPTS', 'no prompts in the file');
  if (file.endsWith('.jsonl') || file.endsWith('.json')) {
    return lines.map((l, i) => {
      let o: unknown;
      try { o = JSON.parse(l); } catch { throw new FormatError(file, 'E_PROMPTS', `line ${i + 1} is not JSON`); }
      const r = o as Record<string, unknown>;
      if (typeof r.prompt !== 'string') throw new FormatError(file, 'E_PROMPTS', `line ${i + 1} has no string "prompt"`);
      return typeof r.response === 'string' ? { prompt: r.prompt, response: r.response } : { prompt: r.prompt };
    });
  }
  return lines.map((l) => ({ prompt: l }));
}

export interface TextTokenizer { encode(text: string, addSpecial: boolean): number[]; decode(ids: number[]): string }

/** Loads `tokenizer.json` (+ `tokenizer_config.json` when present) from a folder or file. */
export function loadTokenizer(spec: string): TextTokenizer {
  const file = fs.existsSync(spec) && fs.statSync(spec).isDirectory() ? path.join(spec, 'tokenizer.json') : spec;
  if (!fs.existsSync(file)) throw new RlvrError('tokenizer.json not found (give --tokenizer)', { file, code: 'ENOENT' });
  let json: object, cfg: object = {};
  try { json = JSON.parse(fs.readFileSync(file, 'utf8')) as object; } catch (e) { throw new FormatError(file, 'E_TOKENIZER', `not valid JSON (${(e as Error).message.slice(0, 80)})`); }
  const cfgFile = path.join(path.dirname(file), 'tokenizer_config.json');
  if (fs.existsSync(cfgFile)) try { cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as object; } catch { /* optional */ }
  let tok: Tokenizer;
  try { tok = new Tokenizer(json, cfg); } catch (e) { throw new FormatError(file, 'E_TOKENIZER', `cannot build the tokenizer (${(e as Error).message.slice(0, 120)})`); }
  return {
    encode: (text, addSpecial) => tok.encode(text, { add_special_tokens: addSpecial }).ids.map(Number),
    decode: (ids) => tok.decode(ids),
  };
}

export interface KlOptions {
  base: string; tuned: string; prompts: PromptItem[]; tokenizer: TextTokenizer;
  /** Responses sampled per prompt when none is given. */
  samples: number; maxNew: number; seed: number;
  onProgress?: (what: string) => void;
}

export interface KlPromptResult { prompt: string; responses: string[]; tokens: number; klTunedBase: number; klBaseTuned: number }
export interface KlResult {
  base: string; tuned: string;
  directions: { klTunedBase: 'KL(π+ ‖ π0) = Σ_v π+(v) log(π+(v)/π0(v))'; klBaseTuned: 'KL(π0 ‖ π+) = Σ_v π0(v) log(π0(v)/π+(v))' };
  responsesFrom: 'given' | 'sampled from tuned (temperature 1)';
  seed: number; samples: number; maxNew: number;
  prompts: KlPromptResult[];
  meanKlTunedBase: number; meanKlBaseTuned: number; tokens: number;
}

function checkSameShape(a: HfDecoderConfig, b: HfDecoderConfig, file: string): void {
  for (const k of ['hiddenSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'vocabSize'] as const) {
    if (a[k] !== b[k]) throw new RlvrError(`${k} differs from the base (${b[k]} vs ${a[k]})`, { file, code: 'E_SHAPE' });
  }
}

/** Computes the token-wise KL of SPEC §7. */
export function tokenKl(o: KlOptions): KlResult {
  const bsrc = openCheckpoint(o.base), tsrc = openCheckpoint(o.tuned);
  try {
    const bc = hfDecoderConfig(bsrc), tc = hfDecoderConfig(tsrc);
    checkSameShape(bc, tc, o.tuned);
    const rng = new Rng(o.seed);
    // sequences: prompt ids + response ids, grouped by prompt
    const seqs: { item: number; prompt: number[]; response: number[] }[] = [];
    const given = o.prompts.every((p) => p.response !== undefined);
    o.prompts.forEach((p, i) => {
      const ids = o.tokenizer.encode(p.prompt, true);
      if (ids.length === 0) throw new RlvrError(`prompt ${i + 1} encodes to no tokens`, { code: 'E_PROMPTS' });
      if (given) seqs.push({ item: i, prompt: ids, response: o.tokenizer.encode(p.response!, false) });
      else for (let s = 0; s < o.samples; s++) seqs.push({ item: i, prompt: ids, response: [] });
    });
    if (!given) sample(tsrc, tc, seqs, o.maxNew, rng, o.onProgress);
    const { tokens, B, T, positions, owner } = pack(seqs);
    o.onProgress?.('tuned pass');
    const lt = streamingLogProbs(tsrc, tc, tokens, B, T, positions);
    o.onProgress?.('base pass');
    const lb = streamingLogProbs(bsrc, bc, tokens, B, T, positions);
    const per = o.prompts.map((p) => ({ prompt: p.prompt, responses: [] as string[], tokens: 0, sumF: 0, sumR: 0 }));
    for (const s of seqs) per[s.item]!.responses.push(o.tokenizer.decode(s.response));
    positions.forEach((_, i) => {
      const it = per[seqs[owner[i]!]!.item]!;
      it.sumF += klRow(lt[i]!, lb[i]!, tc.vocabSize); it.sumR += klRow(lb[i]!, lt[i]!, tc.vocabSize); it.tokens++;
    });
    const prompts: KlPromptResult[] = per.map((p) => ({ prompt: p.prompt, responses: p.responses, tokens: p.tokens, klTunedBase: p.tokens ? p.sumF / p.tokens : NaN, klBaseTuned: p.tokens ? p.sumR / p.tokens : NaN }));
    const counted = prompts.filter((p) => p.tokens > 0);
    return {
      base: o.base, tuned: o.tuned,
      directions: { klTunedBase: 'KL(π+ ‖ π0) = Σ_v π+(v) log(π+(v)/π0(v))', klBaseTuned: 'KL(π0 ‖ π+) = Σ_v π0(v) log(π0(v)/π+(v))' },
      responsesFrom: given ? 'given' : 'sampled from tuned (temperature 1)', seed: o.seed, samples: given ? 1 : o.samples, maxNew: o.maxNew,
      prompts,
      meanKlTunedBase: counted.reduce((a, p) => a + p.klTunedBase, 0) / Math.max(1, counted.length),
      meanKlBaseTuned: counted.reduce((a, p) => a + p.klBaseTuned, 0) / Math.max(1, counted.length),
      tokens: positions.length,
    };
  } finally { bsrc.close(); tsrc.close(); }
}

/** Right-padded batch and the flat positions that predict each response token. */
function pack(seqs: { prompt: number[]; response: number[] }[]): { tokens: Int32Array; B: number; T: number; positions: number[]; owner: number[] } {
  const B = seqs.length;
  let T = 1;
  for (const s of seqs) T = Math.max(T, s.prompt.length + s.response.length);
  const tokens = new Int32Array(B * T);
  const positions: number[] = [], owner: number[] = [];
  seqs.forEach((s, b) => {
    const all = [...s.prompt, ...s.response];
    for (let t = 0; t < all.length; t++) tokens[b * T + t] = all[t]!;
    for (let j = 0; j < s.response.length; j++) { positions.push(b * T + s.prompt.length - 1 + j); owner.push(b); }
  });
  return { tokens, B, T, positions, owner };
}

function sample(src: TensorSource, c: HfDecoderConfig, seqs: { prompt: number[]; response: number[] }[], maxNew: number, rng: Rng, onProgress?: (w: string) => void): void {
  const done = seqs.map(() => false);
  const probs = new Float64Array(c.vocabSize);
  for (let step = 0; step < maxNew; step++) {
    const live = seqs.map((_, i) => i).filter((i) => !done[i]);
    if (live.length === 0) break;
    onProgress?.(`sampling token ${step + 1}/${maxNew}`);
    const sub = live.map((i) => seqs[i]!);
    const B = sub.length;
    let T = 1;
    for (const s of sub) T = Math.max(T, s.prompt.length + s.response.length);
    const tokens = new Int32Array(B * T);
    const positions: number[] = [];
    sub.forEach((s, b) => {
      const all = [...s.prompt, ...s.response];
      for (let t = 0; t < all.length; t++) tokens[b * T + t] = all[t]!;
      positions.push(b * T + all.length - 1);
    });
    const lp = streamingLogProbs(src, c, tokens, B, T, positions);
    live.forEach((i, b) => {
      for (let v = 0; v < c.vocabSize; v++) probs[v] = Math.exp(lp[b]![v]!);
      const pick = rng.categorical(probs);
      seqs[i]!.response.push(pick);
      if (c.eosTokenIds.includes(pick)) done[i] = true;
    });
  }
}
