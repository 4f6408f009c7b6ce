/**
 * A tiny Qwen2-style decoder (token embeddings, RMSNorm, rotary embeddings, grouped-query
 * attention with q/k/v biases, SwiGLU MLP, untied lm_head) with a hand-written backward.
 *
 * Parameters carry Hugging Face names and PyTorch `[out, in]` layout, so every other
 * command reads the lab's checkpoints like a real model's. Storage is Float32Array (the
 * fp32 master weights an RL framework keeps); a Float64Array mode exists for gradient
 * checks. All loops run in a fixed order, so results are bit-for-bit deterministic.
 */
import { Rng } from '../util/random.js';

export type Arr = Float32Array | Float64Array;

export interface LabModelConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  bosTokenId: number;
  eosTokenId: number;
}

export const DEFAULT_LAB_CONFIG: LabModelConfig = {
  vocabSize: 16,
  hiddenSize: 128,
  intermediateSize: 256,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  maxPositions: 32,
  bosTokenId: 15,
  eosTokenId: 14,
};

/** The Hugging Face `config.json` for a lab model (Qwen2 keys). */
export function hfConfigJson(c: LabModelConfig): Record<string, unknown> {
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_position_embeddings: c.maxPositions,
    hidden_act: 'silu',
    attention_dropout: 0,
    initializer_range: 0.02,
    tie_word_embeddings: false,
    use_sliding_window: false,
    use_cache: true,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    torch_dtype: 'bfloat16',
  };
}

/** Reads a lab config back from a parsed HF config.json object. */
export function labConfigFromHf(raw: Readonly<Record<string, unknown>>): LabModelConfig {
  const n = (k: string, d?: number): number => {
    const v = raw[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (d !== undefined) return d;
    throw new Error(`config.json lacks ${k}`);
  };
  const hidden = n('hidden_size');
  const heads = n('num_attention_heads');
  return {
    vocabSize: n('vocab_size'),
    hiddenSize: hidden,
    intermediateSize: n('intermediate_size'),
    numLayers: n('num_hidden_layers'),
    numHeads: heads,
    numKvHeads: n('num_key_value_heads', heads),
    headDim: n('head_dim', hidden / heads),
    rmsNormEps: n('rms_norm_eps', 1e-6),
    ropeTheta: n('rope_theta', 10000),
    maxPositions: n('max_position_embeddings', 32),
    bosTokenId: n('bos_token_id', 0),
    eosTokenId: n('eos_token_id', 0),
  };
}

export interface ParamSpec { name: string; shape: number[] }

/** Parameter names and shapes, in a fixed (HF-like) order. */
export function paramSpecs(c: LabModelConfig): ParamSpec[] {
  const H = c.hiddenSize, I = c.intermediateSize, Dq = c.numHeads * c.headDim, Dkv = c.numKvHeads * c.headDim;
  const out: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, H] }];
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      { name: p + 'input_layernorm.weight', shape: [H] },
      { name: p + 'self_attn.q_proj.weight', shape: [Dq, H] },
      { name: p + 'self_attn.q_proj.bias', shape: [Dq] },
      { name: p + 'self_attn.k_proj.weight', shape: [Dkv, H] },
      { name: p + 'self_attn.k_proj.bias', shape: [Dkv] },
      { name: p + 'self_attn.v_proj.weight', shape: [Dkv, H] },
      { name: p + 'self_attn.v_proj.bias', shape: [Dkv] },
      { name: p + 'self_attn.o_proj.weight', shape: [H, Dq] },
      { name: p + 'post_attention_layernorm.weight', shape: [H] },
      { name: p + 'mlp.gate_proj.weight', shape: [I, H] },
      { name: p + 'mlp.up_proj.weight', shape: [I, H] },
      { name: p + 'mlp.down_proj.weight', shape: [H, I] },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [H] }, { name: 'lm_head.weight', shape: [c.vocabSize, H] });
  return out;
}

/** Named parameter tensors (flat, row-major `[out, in]`). */
export type Params = Map<string, Arr>;

/** Fresh parameters: N(0, 0.02²) weights (down/o scaled by depth), zero biases, unit norms. */
export function initParams(c: LabModelConfig, seed: number, f64 = false): Params {
  const rng = new Rng(seed);
  const p: Params = new Map();
  for (const s of paramSpecs(c)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const a = f64 ? new Float64Array(n) : new Float32Array(n);
    if (s.name.endsWith('norm.weight')) a.fill(1);
    else if (s.name.endsWith('.bias')) { /* zeros */ }
    else {
      // 1/sqrt(fan_in) keeps activations O(1) in a model this narrow; residual outputs are
      // scaled down by depth as in GPT-2.
      const fanIn = s.shape[1]!;
      let std = 1 / Math.sqrt(fanIn);
      if (s.name.includes('o_proj') || s.name.includes('down_proj')) std /= Math.sqrt(2 * c.numLayers);
      if (s.name.includes('embed_tokens')) std = 1;
      rng.fillNormal(a, std);
    }
    p.set(s.name, a);
  }
  return p;
}

export function zerosLike(p: Params, f64 = false): Params {
  const g: Params = new Map();
  for (const [k, v] of p) g.set(k, f64 || v instanceof Float64Array ? new Float64Array(v.length) : new Float32Array(v.length));
  return g;
}

// ---------------------------------------------------------------- kernels

/**
 * Y[n, o] = Σ_i X[n, i] W[o, i] + b[o]. Register-blocked 4 rows × 2 outputs (each loaded
 * value feeds several products), accumulated in double in a fixed order.
 */
export function linearForward(X: Arr, W: Arr, b: Arr | null, Y: Arr, N: number, IN: number, OUT: number): void {
  let n = 0;
  for (; n + 3 < N; n += 4) {
    const x0 = n * IN, x1 = x0 + IN, x2 = x1 + IN, x3 = x2 + IN;
    const y0 = n * OUT, y1 = y0 + OUT, y2 = y1 + OUT, y3 = y2 + OUT;
    let o = 0;
    for (; o + 1 < OUT; o += 2) {
      const wa = o * IN, wb = wa + IN;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
      for (let i = 0; i < IN; i++) {
        const u = W[wa + i]!, v = W[wb + i]!;
        const p0 = X[x0 + i]!, p1 = X[x1 + i]!, p2 = X[x2 + i]!, p3 = X[x3 + i]!;
        a0 += p0 * u; a1 += p1 * u; a2 += p2 * u; a3 += p3 * u;
        b0 += p0 * v; b1 += p1 * v; b2 += p2 * v; b3 += p3 * v;
      }
      const ba = b ? b[o]! : 0, bb = b ? b[o + 1]! : 0;
      Y[y0 + o] = a0 + ba; Y[y1 + o] = a1 + ba; Y[y2 + o] = a2 + ba; Y[y3 + o] = a3 + ba;
      Y[y0 + o + 1] = b0 + bb; Y[y1 + o + 1] = b1 + bb; Y[y2 + o + 1] = b2 + bb; Y[y3 + o + 1] = b3 + bb;
    }
    for (; o < OUT; o++) {
      const wa = o * IN;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      for (let i = 0; i < IN; i++) {
        const u = W[wa + i]!;
        a0 += X[x0 + i]! * u; a1 += X[x1 + i]! * u; a2 += X[x2 + i]! * u; a3 += X[x3 + i]! * u;
      }
      const ba = b ? b[o]! : 0;
      Y[y0 + o] = a0 + ba; Y[y1 + o] = a1 + ba; Y[y2 + o] = a2 + ba; Y[y3 + o] = a3 + ba;
    }
  }
  for (; n < N; n++) {
    const xo = n * IN, yo = n * OUT;
    for (let o = 0; o < OUT; o++) {
      const wo = o * IN;
      let s = 0;
      for (let i = 0; i < IN; i++) s += X[xo + i]! * W[wo + i]!;
      Y[yo + o] = s + (b ? b[o]! : 0);
    }
  }
}

/** dX += dY W; dW += dYᵀ X; db += Σ_n dY (dX may be null). Blocked by 4, fixed order. */
export function linearBackward(dY: Arr, X: Arr, W: Arr, dX: Arr | null, dW: Arr, db: Arr | null, N: number, IN: number, OUT: number): void {
  let n = 0;
  for (; n + 3 < N; n += 4) {
    const x0 = n * IN, x1 = x0 + IN, x2 = x1 + IN, x3 = x2 + IN;
    const y0 = n * OUT, y1 = y0 + OUT, y2 = y1 + OUT, y3 = y2 + OUT;
    for (let o = 0; o < OUT; o++) {
      const g0 = dY[y0 + o]!, g1 = dY[y1 + o]!, g2 = dY[y2 + o]!, g3 = dY[y3 + o]!;
      if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0) continue;
      const wo = o * IN;
      for (let i = 0; i < IN; i++) dW[wo + i] += g0 * X[x0 + i]! + g1 * X[x1 + i]! + g2 * X[x2 + i]! + g3 * X[x3 + i]!;
      if (db) db[o] += g0 + g1 + g2 + g3;
    }
  }
  for (; n < N; n++) {
    const xo = n * IN, yo = n * OUT;
    for (let o = 0; o < OUT; o++) {
      const g = dY[yo + o]!;
      if (g === 0) continue;
      const wo = o * IN;
      for (let i = 0; i < IN; i++) dW[wo + i] += g * X[xo + i]!;
      if (db) db[o] += g;
    }
  }
  if (!dX) return;
  for (let m = 0; m < N; m++) {
    const xo = m * IN, yo = m * OUT;
    let o = 0;
    for (; o + 3 < OUT; o += 4) {
      const g0 = dY[yo + o]!, g1 = dY[yo + o + 1]!, g2 = dY[yo + o + 2]!, g3 = dY[yo + o + 3]!;
      if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0) continue;
      const w0 = o * IN, w1 = w0 + IN, w2 = w1 + IN, w3 = w2 + IN;
      for (let i = 0; i < IN; i++) dX[xo + i] += g0 * W[w0 + i]! + g1 * W[w1 + i]! + g2 * W[w2 + i]! + g3 * W[w3 + i]!;
    }
    for (; o < OUT; o++) {
      const g = dY[yo + o]!;
      if (g === 0) continue;
      const wo = o * IN;
      for (let i = 0; i < IN; i++) dX[xo + i] += g * W[wo + i]!;
    }
  }
}

export function rmsNormForward(X: Arr, w: Arr, Y: Arr, R: Arr, N: number, H: number, eps: number): void {
  for (let n = 0; n < N; n++) {
    const o = n * H;
    let ss = 0;
    for (let i = 0; i < H; i++) ss += X[o + i]! * X[o + i]!;
    const r = 1 / Math.sqrt(ss / H + eps);
    R[n] = r;
    for (let i = 0; i < H; i++) Y[o + i] = X[o + i]! * r * w[i]!;
  }
}

/** dX += ∂/∂X, dw += ∂/∂w of y = x · r · w. */
function rmsNormBackward(dY: Arr, X: Arr, w: Arr, R: Arr, dX: Arr, dw: Arr, N: number, H: number): void {
  for (let n = 0; n < N; n++) {
    const o = n * H;
    const r = R[n]!;
    let dot = 0;
    for (let i = 0; i < H; i++) {
      const gw = dY[o + i]! * w[i]!;
      dot += gw * X[o + i]!;
      dw[i] += dY[o + i]! * X[o + i]! * r;
    }
    const c = dot * r * r * r / H;
    for (let i = 0; i < H; i++) dX[o + i] += dY[o + i]! * w[i]! * r - X[o + i]! * c;
  }
}

/** Rotary tables: cos/sin[pos * half + i]. */
export function ropeTables(c: LabModelConfig, T: number): { cos: Float64Array; sin: Float64Array } {
  const half = c.headDim / 2;
  const cos = new Float64Array(T * half), sin = new Float64Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      // Qwen2 computes inv_freq in fp32; the angle is t * inv_freq (fp32 product).
      const invFreq = Math.fround(1 / Math.pow(c.ropeTheta, (2 * i) / c.headDim));
      const ang = Math.fround(t * invFreq);
      cos[t * half + i] = Math.cos(ang);
      sin[t * half + i] = Math.sin(ang);
    }
  }
  return { cos, sin };
}

/** In-place rotate_half RoPE on rows of `heads` heads of size D at position pos; sign=-1 applies the inverse (backward). */
export function ropeApply(A: Arr, off: number, heads: number, D: number, cos: Float64Array, sin: Float64Array, pos: number, sign: number): void {
  const half = D / 2;
  for (let h = 0; h < heads; h++) {
    const base = off + h * D;
    for (let i = 0; i < half; i++) {
      const c = cos[pos * half + i]!, s = sign * sin[pos * half + i]!;
      const x1 = A[base + i]!, x2 = A[base + i + half]!;
      A[base + i] = x1 * c - x2 * s;
      A[base + i + half] = x2 * c + x1 * s;
    }
  }
}

// ---------------------------------------------------------------- training forward / backward

interface LayerActs {
  xIn: Arr; r1: Arr; h1: Arr; q: Arr; k: Arr; v: Arr; P: Arr; att: Arr;
  x2: Arr; r2: Arr; h2: Arr; g: Arr; u: Arr; a: Arr;
}

/** Everything the backward needs from one forward over a [B, T] token batch. */
export interface ForwardCache {
  B: number; T: number; tokens: Int32Array;
  layers: LayerActs[];
  xF: Arr; rF: Arr; hF: Arr;
  /** logits [B*T, V] */
  logits: Arr;
}

function alloc(f64: boolean, n: number): Arr { return f64 ? new Float64Array(n) : new Float32Array(n); }

/**
 * Full-sequence forward over B sequences of length T (right-padded; causal attention makes
 * padding after a sequence's end harmless). Returns logits and the activations kept for backward.
 */
export function forward(c: LabModelConfig, p: Params, tokens: Int32Array, B: number, T: number): ForwardCache {
  const f64 = p.get('lm_head.weight') instanceof Float64Array;
  const H = c.hiddenSize, I = c.intermediateSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads;
  const Dq = Hq * D, Dkv = Hkv * D, nRep = Hq / Hkv, N = B * T, V = c.vocabSize;
  const { cos, sin } = ropeTables(c, T);
  const scale = 1 / Math.sqrt(D);
  const emb = p.get('model.embed_tokens.weight')!;
  let x = alloc(f64, N * H);
  for (let n = 0; n < N; n++) {
    const t = tokens[n]!;
    for (let i = 0; i < H; i++) x[n * H + i] = emb[t * H + i]!;
  }
  const layers: LayerActs[] = [];
  const row = new Float64Array(T);
  for (let l = 0; l < c.numLayers; l++) {
    const pre = `model.layers.${l}.`;
    const xIn = x;
    const r1 = alloc(f64, N), h1 = alloc(f64, N * H);
    rmsNormForward(xIn, p.get(pre + 'input_layernorm.weight')!, h1, r1, N, H, c.rmsNormEps);
    const q = alloc(f64, N * Dq), k = alloc(f64, N * Dkv), v = alloc(f64, N * Dkv);
    linearForward(h1, p.get(pre + 'self_attn.q_proj.weight')!, p.get(pre + 'self_attn.q_proj.bias')!, q, N, H, Dq);
    linearForward(h1, p.get(pre + 'self_attn.k_proj.weight')!, p.get(pre + 'self_attn.k_proj.bias')!, k, N, H, Dkv);
    linearForward(h1, p.get(pre + 'self_attn.v_proj.weight')!, p.get(pre + 'self_attn.v_proj.bias')!, v, N, H, Dkv);
    for (let n = 0; n < N; n++) {
      const t = n % T;
      ropeApply(q, n * Dq, Hq, D, cos, sin, t, 1);
      ropeApply(k, n * Dkv, Hkv, D, cos, sin, t, 1);
    }
    const P = alloc(f64, B * Hq * T * T);
    const att = alloc(f64, N * Dq);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor(h / nRep);
        for (let t = 0; t < T; t++) {
          const qo = (b * T + t) * Dq + h * D;
          let mx = -Infinity;
          for (let s = 0; s <= t; s++) {
            const ko = (b * T + s) * Dkv + g * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[qo + d]! * k[ko + d]!;
            dot *= scale;
            row[s] = dot;
            if (dot > mx) mx = dot;
          }
          let sum = 0;
          for (let s = 0; s <= t; s++) { const e = Math.exp(row[s]! - mx); row[s] = e; sum += e; }
          const po = ((b * Hq + h) * T + t) * T;
          for (let s = 0; s <= t; s++) P[po + s] = row[s]! / sum;
          for (let s = 0; s <= t; s++) {
            const pr = P[po + s]!;
            const vo = (b * T + s) * Dkv + g * D;
            for (let d = 0; d < D; d++) att[qo + d] += pr * v[vo + d]!;
          }
        }
      }
    }
    const x2 = alloc(f64, N * H);
    linearForward(att, p.get(pre + 'self_attn.o_proj.weight')!, null, x2, N, Dq, H);
    for (let i = 0; i < N * H; i++) x2[i] += xIn[i]!;
    const r2 = alloc(f64, N), h2 = alloc(f64, N * H);
    rmsNormForward(x2, p.get(pre + 'post_attention_layernorm.weight')!, h2, r2, N, H, c.rmsNormEps);
    const gt = alloc(f64, N * I), u = alloc(f64, N * I), a = alloc(f64, N * I);
    linearForward(h2, p.get(pre + 'mlp.gate_proj.weight')!, null, gt, N, H, I);
    linearForward(h2, p.get(pre + 'mlp.up_proj.weight')!, null, u, N, H, I);
    for (let i = 0; i < N * I; i++) { const z = gt[i]!; a[i] = (z / (1 + Math.exp(-z))) * u[i]!; }
    const x3 = alloc(f64, N * H);
    linearForward(a, p.get(pre + 'mlp.down_proj.weight')!, null, x3, N, I, H);
    for (let i = 0; i < N * H; i++) x3[i] += x2[i]!;
    layers.push({ xIn, r1, h1, q, k, v, P, att, x2, r2, h2, g: gt, u, a });
    x = x3;
  }
  const rF = alloc(f64, N), hF = alloc(f64, N * H);
  rmsNormForward(x, p.get('model.norm.weight')!, hF, rF, N, H, c.rmsNormEps);
  const logits = alloc(f64, N * V);
  linearForward(hF, p.get('lm_head.weight')!, null, logits, N, H, V);
  return { B, T, tokens, layers, xF: x, rF, hF, logits };
}

/** Accumulates parameter gradients of Σ dlogits·logits into `grads`. */
export function backward(c: LabModelConfig, p: Params, cache: ForwardCache, dlogits: Arr, grads: Params): void {
  const f64 = dlogits instanceof Float64Array;
  const { B, T } = cache;
  const H = c.hiddenSize, I = c.intermediateSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads;
  const Dq = Hq * D, Dkv = Hkv * D, nRep = Hq / Hkv, N = B * T, V = c.vocabSize;
  const { cos, sin } = ropeTables(c, T);
  const scale = 1 / Math.sqrt(D);
  const dhF = alloc(f64, N * H);
  linearBackward(dlogits, cache.hF, p.get('lm_head.weight')!, dhF, grads.get('lm_head.weight')!, null, N, H, V);
  let dx = alloc(f64, N * H);
  rmsNormBackward(dhF, cache.xF, p.get('model.norm.weight')!, cache.rF, dx, grads.get('model.norm.weight')!, N, H);
  const dP = new Float64Array(T);
  for (let l = c.numLayers - 1; l >= 0; l--) {
    const pre = `model.layers.${l}.`;
    const A = cache.layers[l]!;
    // MLP: x3 = x2 + down(silu(g) * u)
    const da = alloc(f64, N * I);
    linearBackward(dx, A.a, p.get(pre + 'mlp.down_proj.weight')!, da, grads.get(pre + 'mlp.down_proj.weight')!, null, N, I, H);
    const dg = alloc(f64, N * I), du = alloc(f64, N * I);
    for (let i = 0; i < N * I; i++) {
      const z = A.g[i]!, s = 1 / (1 + Math.exp(-z));
      const silu = z * s;
      du[i] = da[i]! * silu;
      dg[i] = da[i]! * A.u[i]! * (s * (1 + z * (1 - s)));
    }
    const dh2 = alloc(f64, N * H);
    linearBackward(dg, A.h2, p.get(pre + 'mlp.gate_proj.weight')!, dh2, grads.get(pre + 'mlp.gate_proj.weight')!, null, N, H, I);
    linearBackward(du, A.h2, p.get(pre + 'mlp.up_proj.weight')!, dh2, grads.get(pre + 'mlp.up_proj.weight')!, null, N, H, I);
    const dx2 = dx; // residual path
    rmsNormBackward(dh2, A.x2, p.get(pre + 'post_attention_layernorm.weight')!, A.r2, dx2, grads.get(pre + 'post_attention_layernorm.weight')!, N, H);
    // attention: x2 = xIn + o(att)
    const datt = alloc(f64, N * Dq);
    linearBackward(dx2, A.att, p.get(pre + 'self_attn.o_proj.weight')!, datt, grads.get(pre + 'self_attn.o_proj.weight')!, null, N, Dq, H);
    const dq = alloc(f64, N * Dq), dk = alloc(f64, N * Dkv), dv = alloc(f64, N * Dkv);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor(h / nRep);
        for (let t = 0; t < T; t++) {
          const qo = (b * T + t) * Dq + h * D;
          const po = ((b * Hq + h) * T + t) * T;
          let sdp = 0;
          for (let s = 0; s <= t; s++) {
            const vo = (b * T + s) * Dkv + g * D;
            const pr = A.P[po + s]!;
            let dot = 0;
            for (let d = 0; d < D; d++) { dot += datt[qo + d]! * A.v[vo + d]!; dv[vo + d] += pr * datt[qo + d]!; }
            dP[s] = dot;
            sdp += pr * dot;
          }
          for (let s = 0; s <= t; s++) {
            const ds = A.P[po + s]! * (dP[s]! - sdp) * scale;
            if (ds === 0) continue;
            const ko = (b * T + s) * Dkv + g * D;
            for (let d = 0; d < D; d++) { dq[qo + d] += ds * A.k[ko + d]!; dk[ko + d] += ds * A.q[qo + d]!; }
          }
        }
      }
    }
    for (let n = 0; n < N; n++) {
      const t = n % T;
      ropeApply(dq, n * Dq, Hq, D, cos, sin, t, -1);
      ropeApply(dk, n * Dkv, Hkv, D, cos, sin, t, -1);
    }
    const dh1 = alloc(f64, N * H);
    linearBackward(dq, A.h1, p.get(pre + 'self_attn.q_proj.weight')!, dh1, grads.get(pre + 'self_attn.q_proj.weight')!, grads.get(pre + 'self_attn.q_proj.bias')!, N, H, Dq);
    linearBackward(dk, A.h1, p.get(pre + 'self_attn.k_proj.weight')!, dh1, grads.get(pre + 'self_attn.k_proj.weight')!, grads.get(pre + 'self_attn.k_proj.bias')!, N, H, Dkv);
    linearBackward(dv, A.h1, p.get(pre + 'self_attn.v_proj.weight')!, dh1, grads.get(pre + 'self_attn.v_proj.weight')!, grads.get(pre + 'self_attn.v_proj.bias')!, N, H, Dkv);
    rmsNormBackward(dh1, A.xIn, p.get(pre + 'input_layernorm.weight')!, A.r1, dx2, grads.get(pre + 'input_layernorm.weight')!, N, H);
    dx = dx2;
  }
  const dEmb = grads.get('model.embed_tokens.weight')!;
  for (let n = 0; n < N; n++) {
    const t = cache.tokens[n]!;
    for (let i = 0; i < H; i++) dEmb[t * H + i] += dx[n * H + i]!;
  }
}

/** Row-wise log-softmax of logits [N, V] into a Float64Array. */
export function logSoftmaxRows(logits: Arr, N: number, V: number): Float64Array {
  const out = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    const o = n * V;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (logits[o + v]! > mx) mx = logits[o + v]!;
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[o + v]! - mx);
    const lse = mx + Math.log(s);
    for (let v = 0; v < V; v++) out[o + v] = logits[o + v]! - lse;
  }
  return out;
}

// ---------------------------------------------------------------- incremental decoding

/**
 * KV-cached decoding for B sequences advancing in lockstep (same position). Used for
 * sampling rollouts; the prompt is fed one token at a time (prompts here are short).
 */
export class Decoder {
  private readonly kc: Arr[]; private readonly vc: Arr[];
  private readonly cos: Float64Array; private readonly sin: Float64Array;
  pos = 0;
  constructor(readonly c: LabModelConfig, readonly p: Params, readonly B: number, readonly Tmax: number) {
    const f64 = p.get('lm_head.weight') instanceof Float64Array;
    this.kc = []; this.vc = [];
    for (let l = 0; l < c.numLayers; l++) {
      this.kc.push(alloc(f64, B * Tmax * c.numKvHeads * c.headDim));
      this.vc.push(alloc(f64, B * Tmax * c.numKvHeads * c.headDim));
    }
    const t = ropeTables(c, Tmax);
    this.cos = t.cos; this.sin = t.sin;
  }

  /** Feeds one token per sequence at the current position; returns logits [B, V]. */
  step(tokens: Int32Array): Arr {
    const { c, p, B } = this;
    const f64 = p.get('lm_head.weight') instanceof Float64Array;
    const H = c.hiddenSize, I = c.intermediateSize, D = c.headDim, Hq = c.numHeads, Hkv = c.numKvHeads;
    const Dq = Hq * D, Dkv = Hkv * D, nRep = Hq / Hkv, V = c.vocabSize, T = this.pos + 1, Tm = this.Tmax;
    if (this.pos >= Tm) throw new Error('Decoder: past Tmax');
    const scale = 1 / Math.sqrt(D);
    const emb = p.get('model.embed_tokens.weight')!;
    const x = alloc(f64, B * H);
    for (let b = 0; b < B; b++) for (let i = 0; i < H; i++) x[b * H + i] = emb[tokens[b]! * H + i]!;
    const h = alloc(f64, B * H), r = alloc(f64, B);
    const q = alloc(f64, B * Dq), k = alloc(f64, B * Dkv), v = alloc(f64, B * Dkv), att = alloc(f64, B * Dq), o = alloc(f64, B * H);
    const gt = alloc(f64, B * I), u = alloc(f64, B * I);
    const row = new Float64Array(T);
    for (let l = 0; l < c.numLayers; l++) {
      const pre = `model.layers.${l}.`;
      rmsNormForward(x, p.get(pre + 'input_layernorm.weight')!, h, r, B, H, c.rmsNormEps);
      linearForward(h, p.get(pre + 'self_attn.q_proj.weight')!, p.get(pre + 'self_attn.q_proj.bias')!, q, B, H, Dq);
      linearForward(h, p.get(pre + 'self_attn.k_proj.weight')!, p.get(pre + 'self_attn.k_proj.bias')!, k, B, H, Dkv);
      linearForward(h, p.get(pre + 'self_attn.v_proj.weight')!, p.get(pre + 'self_attn.v_proj.bias')!, v, B, H, Dkv);
      const KC = this.kc[l]!, VC = this.vc[l]!;
      for (let b = 0; b < B; b++) {
        ropeApply(q, b * Dq, Hq, D, this.cos, this.sin, this.pos, 1);
        ropeApply(k, b * Dkv, Hkv, D, this.cos, this.sin, this.pos, 1);
        const co = (b * Tm + this.pos) * Dkv;
        for (let i = 0; i < Dkv; i++) { KC[co + i] = k[b * Dkv + i]!; VC[co + i] = v[b * Dkv + i]!; }
      }
      att.fill(0);
      for (let b = 0; b < B; b++) {
        for (let hh = 0; hh < Hq; hh++) {
          const g = Math.floor(hh / nRep);
          const qo = b * Dq + hh * D;
          let mx = -Infinity;
          for (let s = 0; s < T; s++) {
            const ko = (b * Tm + s) * Dkv + g * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += q[qo + d]! * KC[ko + d]!;
            dot *= scale;
            row[s] = dot;
            if (dot > mx) mx = dot;
          }
          let sum = 0;
          for (let s = 0; s < T; s++) { const e = Math.exp(row[s]! - mx); row[s] = e; sum += e; }
          for (let s = 0; s < T; s++) {
            // the training forward stores P in the parameter dtype; round the same way
            const pr = f64 ? row[s]! / sum : Math.fround(row[s]! / sum);
            const vo = (b * Tm + s) * Dkv + g * D;
            for (let d = 0; d < D; d++) att[qo + d] += pr * VC[vo + d]!;
          }
        }
      }
      linearForward(att, p.get(pre + 'self_attn.o_proj.weight')!, null, o, B, Dq, H);
      for (let i = 0; i < B * H; i++) x[i] += o[i]!;
      rmsNormForward(x, p.get(pre + 'post_attention_layernorm.weight')!, h, r, B, H, c.rmsNormEps);
      linearForward(h, p.get(pre + 'mlp.gate_proj.weight')!, null, gt, B, H, I);
      linearForward(h, p.get(pre + 'mlp.up_proj.weight')!, null, u, B, H, I);
      for (let i = 0; i < B * I; i++) { const z = gt[i]!; gt[i] = (z / (1 + Math.exp(-z))) * u[i]!; }
      linearForward(gt, p.get(pre + 'mlp.down_proj.weight')!, null, o, B, I, H);
      for (let i = 0; i < B * H; i++) x[i] += o[i]!;
    }
    rmsNormForward(x, p.get('model.norm.weight')!, h, r, B, H, c.rmsNormEps);
    const logits = alloc(f64, B * V);
    linearForward(h, p.get('lm_head.weight')!, null, logits, B, H, V);
    this.pos++;
    return logits;
  }
}
