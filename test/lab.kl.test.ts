import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_LAB_CONFIG, forward, initParams, logSoftmaxRows } from '../src/lab/model.js';
import { saveLabCheckpoint, loadLabCheckpoint } from '../src/lab/io.js';
import { loadTokenizer, tokenKl } from '../src/lab/kl.js';
import { hfDecoderConfig, streamingLogProbs } from '../src/lab/hfmodel.js';
import { klRow } from '../src/lab/rl.js';
import { VOCAB, encode } from '../src/lab/tasks.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { Rng } from '../src/util/random.js';
import { tempDir } from './helpers.js';

const C = { ...DEFAULT_LAB_CONFIG, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4 };

/** A hand-made character-level BPE tokenizer.json over the lab vocabulary (no merges). */
function writeTokenizer(dir: string): void {
  const vocab = Object.fromEntries(VOCAB.map((ch, i) => [ch, i]));
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: null, post_processor: null, decoder: { type: 'Fuse' },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  }));
}

function makePair(): { base: string; tuned: string } {
  const root = tempDir();
  const base = path.join(root, 'base'), tuned = path.join(root, 'tuned');
  saveLabCheckpoint(base, C, initParams(C, 1));
  const p = initParams(C, 1);
  const rng = new Rng(3);
  for (const v of p.values()) for (let i = 0; i < v.length; i++) v[i] += 0.05 * rng.normal();
  saveLabCheckpoint(tuned, C, p);
  writeTokenizer(tuned);
  return { base, tuned };
}

test('hand-made BPE tokenizer.json round-trips the lab characters', () => {
  const { tuned } = makePair();
  const tok = loadTokenizer(tuned);
  assert.deepEqual(tok.encode('^37+58=', true), encode('^37+58='));
  assert.equal(tok.decode(encode('95.')), '95.');
});

test('streamed HF inference equals the lab forward (log-probs at every position)', () => {
  const { tuned } = makePair();
  const { params } = loadLabCheckpoint(tuned);
  const B = 2, T = 6;
  const tokens = Int32Array.from([15, 3, 7, 10, 5, 8, 15, 1, 2, 11, 9, 13]);
  const ref = logSoftmaxRows(forward(C, params, tokens, B, T).logits, B * T, C.vocabSize);
  const src = openCheckpoint(tuned);
  try {
    const positions = Array.from({ length: B * T }, (_, i) => i);
    const got = streamingLogProbs(src, hfDecoderConfig(src), tokens, B, T, positions);
    positions.forEach((pos) => {
      for (let v = 0; v < C.vocabSize; v++) assert.ok(Math.abs(got[pos]![v]! - ref[pos * C.vocabSize + v]!) < 1e-6, `pos ${pos} v ${v}`);
    });
  } finally { src.close(); }
});

test('token KL on given responses: both directions match the definition; self-KL is 0', () => {
  const { base, tuned } = makePair();
  const tok = loadTokenizer(tuned);
  const prompts = [{ prompt: '^37+58=', response: '95.' }, { prompt: '^2*3=', response: '6.' }];
  const r = tokenKl({ base, tuned, prompts, tokenizer: tok, samples: 1, maxNew: 4, seed: 0 });
  assert.equal(r.tokens, 5);
  // reference: lab forward on each sequence
  const lb = loadLabCheckpoint(base).params, lt = loadLabCheckpoint(tuned).params;
  let meanF = 0, meanR = 0;
  for (const p of prompts) {
    const ids = [...encode(p.prompt), ...encode(p.response)];
    const T = ids.length, tk = Int32Array.from(ids);
    const a = logSoftmaxRows(forward(C, lt, tk, 1, T).logits, T, C.vocabSize), b = logSoftmaxRows(forward(C, lb, tk, 1, T).logits, T, C.vocabSize);
    let f = 0, rv = 0;
    const L = encode(p.prompt).length, n = encode(p.response).length;
    for (let j = 0; j < n; j++) {
      const pos = L - 1 + j;
      f += klRow(a.subarray(pos * C.vocabSize, (pos + 1) * C.vocabSize), b.subarray(pos * C.vocabSize, (pos + 1) * C.vocabSize), C.vocabSize);
      rv += klRow(b.subarray(pos * C.vocabSize, (pos + 1) * C.vocabSize), a.subarray(pos * C.vocabSize, (pos + 1) * C.vocabSize), C.vocabSize);
    }
    meanF += f / n / prompts.length; meanR += rv / n / prompts.length;
  }
  assert.ok(meanF > 0 && meanR > 0 && meanF !== meanR);
  assert.ok(Math.abs(r.meanKlTunedBase - meanF) < 1e-6, `${r.meanKlTunedBase} vs ${meanF}`);
  assert.ok(Math.abs(r.meanKlBaseTuned - meanR) < 1e-6);
  const self = tokenKl({ base: tuned, tuned, prompts, tokenizer: tok, samples: 1, maxNew: 4, seed: 0 });
  assert.equal(self.meanKlTunedBase, 0);
});

test('sampled responses are seeded (same seed, same responses and KL)', () => {
  const { base, tuned } = makePair();
  const tok = loadTokenizer(tuned);
  const prompts = [{ prompt: '^4+4=' }];
  const a = tokenKl({ base, tuned, prompts, tokenizer: tok, samples: 2, maxNew: 3, seed: 5 });
  const b = tokenKl({ base, tuned, prompts, tokenizer: tok, samples: 2, maxNew: 3, seed: 5 });
  assert.deepEqual(a, b);
  assert.equal(a.prompts[0]!.responses.length, 2);
  assert.ok(a.tokens >= 2);
});

test('streamed inference on a Qwen3 checkpoint (q_norm/k_norm, no biases) matches an fp64 reference built on the interventions attention block', async () => {
  const { attentionForward } = await import('../src/interventions/verify.js');
  const { fixture } = await import('./helpers.js');
  const src = openCheckpoint(fixture('interventions', 'qwen3-tiny'));
  try {
    const c = hfDecoderConfig(src);
    const H = c.hiddenSize, I = c.intermediateSize, V = c.vocabSize;
    const ids = [3, 17, 5, 40, 9, 22];
    const T = ids.length;
    const r64 = (n: string): Float64Array => src.readFloat64(n);
    const opt = (n: string): Float64Array | null => (src.has(n) ? src.readFloat64(n) : null);
    const rms = (x: Float64Array, w: Float64Array): Float64Array => {
      const out = new Float64Array(x.length);
      for (let t = 0; t < x.length / H; t++) {
        let ss = 0;
        for (let i = 0; i < H; i++) ss += x[t * H + i]! ** 2;
        const s = 1 / Math.sqrt(ss / H + c.rmsNormEps);
        for (let i = 0; i < H; i++) out[t * H + i] = x[t * H + i]! * s * w[i]!;
      }
      return out;
    };
    const lin = (x: Float64Array, W: Float64Array, inD: number, outD: number): Float64Array => {
      const y = new Float64Array((x.length / inD) * outD);
      for (let t = 0; t < x.length / inD; t++) for (let o = 0; o < outD; o++) { let s = 0; for (let i = 0; i < inD; i++) s += x[t * inD + i]! * W[o * inD + i]!; y[t * outD + o] = s; }
      return y;
    };
    const emb = r64('model.embed_tokens.weight');
    let x = new Float64Array(T * H);
    ids.forEach((id, t) => x.set(emb.subarray(id * H, id * H + H), t * H));
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const a = attentionForward({
        q: r64(p + 'self_attn.q_proj.weight'), k: r64(p + 'self_attn.k_proj.weight'), v: r64(p + 'self_attn.v_proj.weight'), o: r64(p + 'self_attn.o_proj.weight'),
        qBias: opt(p + 'self_attn.q_proj.bias'), kBias: opt(p + 'self_attn.k_proj.bias'), vBias: opt(p + 'self_attn.v_proj.bias'), oBias: null,
        qNorm: opt(p + 'self_attn.q_norm.weight'), kNorm: opt(p + 'self_attn.k_norm.weight'), inputNorm: r64(p + 'input_layernorm.weight'),
      }, { hiddenSize: H, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: c.headDim, rmsNormEps: c.rmsNormEps, ropeTheta: c.ropeTheta }, x, ids.map((_, t) => t));
      for (let i = 0; i < x.length; i++) x[i] += a[i]!;
      const h = rms(x, r64(p + 'post_attention_layernorm.weight'));
      const g = lin(h, r64(p + 'mlp.gate_proj.weight'), H, I), u = lin(h, r64(p + 'mlp.up_proj.weight'), H, I);
      for (let i = 0; i < g.length; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
      const m = lin(g, r64(p + 'mlp.down_proj.weight'), I, H);
      x = x.map((v, i) => v + m[i]!);
    }
    const logits = lin(rms(x, r64('model.norm.weight')), r64(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight'), H, V);
    const got = streamingLogProbs(src, c, Int32Array.from(ids), 1, T, ids.map((_, t) => t));
    for (let t = 0; t < T; t++) {
      let mx = -Infinity; for (let v = 0; v < V; v++) mx = Math.max(mx, logits[t * V + v]!);
      let s = 0; for (let v = 0; v < V; v++) s += Math.exp(logits[t * V + v]! - mx);
      for (let v = 0; v < V; v++) {
        const ref = logits[t * V + v]! - mx - Math.log(s);
        assert.ok(Math.abs(got[t]![v]! - ref) < 2e-4, `t=${t} v=${v}: ${got[t]![v]} vs ${ref}`);
      }
    }
  } finally { src.close(); }
});
