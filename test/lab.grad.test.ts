import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type LabModelConfig, backward, forward, initParams, zerosLike, Decoder, linearForward, linearBackward } from '../src/lab/model.js';
import { crossEntropy } from '../src/lab/sft.js';
import { Rng } from '../src/util/random.js';

// A tiny model in fp64 so central differences are accurate to ~1e-8.
const C: LabModelConfig = {
  vocabSize: 7, hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4,
  rmsNormEps: 1e-6, ropeTheta: 10000, maxPositions: 16, bosTokenId: 6, eosTokenId: 5,
};

function setup(): { p: ReturnType<typeof initParams>; tokens: Int32Array; targets: Int32Array; B: number; T: number } {
  const p = initParams(C, 3, true);
  // Non-trivial biases and norm gains so their gradients are exercised.
  const rng = new Rng(11);
  for (const [k, v] of p) if (k.endsWith('.bias') || k.endsWith('norm.weight')) for (let i = 0; i < v.length; i++) v[i] += 0.3 * rng.normal();
  const B = 2, T = 5;
  const tokens = Int32Array.from([6, 1, 2, 3, 4, 6, 0, 0, 4, 5]);
  const targets = Int32Array.from([1, 2, 3, 4, 5, -1, 0, 4, 5, 2]);
  return { p, tokens, targets, B, T };
}

function lossOf(p: ReturnType<typeof initParams>, tokens: Int32Array, targets: Int32Array, B: number, T: number): number {
  const fc = forward(C, p, tokens, B, T);
  return crossEntropy(fc.logits, targets, C.vocabSize, new Float64Array(fc.logits.length)).loss;
}

test('backward matches central finite differences for every parameter tensor (fp64)', () => {
  const { p, tokens, targets, B, T } = setup();
  const fc = forward(C, p, tokens, B, T);
  const dl = new Float64Array(fc.logits.length);
  crossEntropy(fc.logits, targets, C.vocabSize, dl);
  const grads = zerosLike(p, true);
  backward(C, p, fc, dl, grads);
  const rng = new Rng(5);
  const h = 1e-6;
  for (const [name, w] of p) {
    const g = grads.get(name)!;
    // check up to 6 entries per tensor, including the first and last
    const idx = new Set([0, w.length - 1]);
    while (idx.size < Math.min(6, w.length)) idx.add(rng.int(w.length));
    for (const i of idx) {
      const old = w[i]!;
      w[i] = old + h; const lp = lossOf(p, tokens, targets, B, T);
      w[i] = old - h; const lm = lossOf(p, tokens, targets, B, T);
      w[i] = old;
      const num = (lp - lm) / (2 * h);
      const err = Math.abs(num - g[i]!);
      assert.ok(err <= 1e-6 + 1e-5 * Math.abs(num), `${name}[${i}]: analytic ${g[i]} vs numeric ${num}`);
    }
  }
});

test('every parameter receives a non-zero gradient (no dead path)', () => {
  const { p, tokens, targets, B, T } = setup();
  const fc = forward(C, p, tokens, B, T);
  const dl = new Float64Array(fc.logits.length);
  crossEntropy(fc.logits, targets, C.vocabSize, dl);
  const grads = zerosLike(p, true);
  backward(C, p, fc, dl, grads);
  for (const [name, g] of grads) {
    let s = 0;
    for (let i = 0; i < g.length; i++) s += Math.abs(g[i]!);
    assert.ok(s > 0, name);
  }
});

test('linear kernels: blocked forward/backward equal the plain definitions (all remainders)', () => {
  const rng = new Rng(9);
  for (const [N, IN, OUT] of [[1, 3, 1], [5, 7, 3], [8, 4, 6], [7, 9, 5]] as const) {
    const X = new Float64Array(N * IN), W = new Float64Array(OUT * IN), b = new Float64Array(OUT), dY = new Float64Array(N * OUT);
    rng.fillNormal(X); rng.fillNormal(W); rng.fillNormal(b); rng.fillNormal(dY);
    const Y = new Float64Array(N * OUT);
    linearForward(X, W, b, Y, N, IN, OUT);
    const dX = new Float64Array(N * IN), dW = new Float64Array(OUT * IN), db = new Float64Array(OUT);
    linearBackward(dY, X, W, dX, dW, db, N, IN, OUT);
    for (let n = 0; n < N; n++) for (let o = 0; o < OUT; o++) {
      let s = b[o]!;
      for (let i = 0; i < IN; i++) s += X[n * IN + i]! * W[o * IN + i]!;
      assert.ok(Math.abs(s - Y[n * OUT + o]!) < 1e-12);
    }
    for (let o = 0; o < OUT; o++) for (let i = 0; i < IN; i++) {
      let s = 0;
      for (let n = 0; n < N; n++) s += dY[n * OUT + o]! * X[n * IN + i]!;
      assert.ok(Math.abs(s - dW[o * IN + i]!) < 1e-12);
    }
    for (let n = 0; n < N; n++) for (let i = 0; i < IN; i++) {
      let s = 0;
      for (let o = 0; o < OUT; o++) s += dY[n * OUT + o]! * W[o * IN + i]!;
      assert.ok(Math.abs(s - dX[n * IN + i]!) < 1e-12);
    }
  }
});

test('KV-cached decoding gives bitwise the same fp32 logits as the full forward', () => {
  const p = initParams(C, 4);
  const B = 3, T = 6;
  const rng = new Rng(2);
  const tokens = new Int32Array(B * T).map(() => rng.int(C.vocabSize));
  const fc = forward(C, p, tokens, B, T);
  const dec = new Decoder(C, p, B, T);
  for (let t = 0; t < T; t++) {
    const step = new Int32Array(B);
    for (let b = 0; b < B; b++) step[b] = tokens[b * T + t]!;
    const lg = dec.step(step);
    for (let b = 0; b < B; b++) for (let v = 0; v < C.vocabSize; v++) {
      assert.equal(lg[b * C.vocabSize + v], fc.logits[(b * T + t) * C.vocabSize + v], `b=${b} t=${t} v=${v}`);
    }
  }
});

test('adapters: PiSSA/MiLoRA start at W0; dA = s·Bᵀ·dW and dB = s·dW·Aᵀ match finite differences', async () => {
  const { AdapterSet } = await import('../src/lab/adapters.js');
  for (const kind of ['lora', 'pissa', 'milora'] as const) {
    const p = initParams(C, 8);
    const w0 = p.get('model.layers.1.mlp.down_proj.weight')!.slice();
    const ad = new AdapterSet(C, p, { kind, rank: 2 }, 3);
    if (kind === 'lora') {
      // B = 0 at init: W stays W0 exactly; perturb B so the gradient of A is non-trivial
      for (const [k, v] of ad.params) if (k.endsWith('lora_B')) for (let i = 0; i < v.length; i++) v[i] = 0.01 * (i % 7 - 3);
    }
    ad.materialize(p);
    const w = p.get('model.layers.1.mlp.down_proj.weight')!;
    if (kind !== 'lora') for (let i = 0; i < w.length; i++) assert.ok(Math.abs(w[i]! - w0[i]!) < 1e-5, `${kind} starts at W0`);
    // loss = Σ G ⊙ W with a fixed G: dW = G
    const rng = new Rng(1);
    const G = zerosLike(p);
    for (const g of G.values()) rng.fillNormal(g);
    const lossOf = (): number => { ad.materialize(p); let s = 0; for (const [k, g] of G) { const x = p.get(k)!; for (let i = 0; i < g.length; i++) s += g[i]! * x[i]!; } return s; };
    const ag = zerosLike(ad.params);
    ad.gradients(G, ag);
    for (const name of ['model.layers.0.self_attn.k_proj.weight.lora_A', 'model.layers.1.mlp.down_proj.weight.lora_B']) {
      const a = ad.params.get(name)!;
      for (const i of [0, a.length - 1]) {
        const old = a[i]!, h = 1e-2;
        a[i] = old + h; const lp = lossOf();
        a[i] = old - h; const lm = lossOf();
        a[i] = old;
        const num = (lp - lm) / (2 * h);
        assert.ok(Math.abs(num - ag.get(name)![i]!) < 2e-3 * (1 + Math.abs(num)), `${kind} ${name}[${i}]: ${ag.get(name)![i]} vs ${num}`);
      }
    }
  }
});
