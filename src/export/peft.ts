/**
 * `buildAdapter(...)`: LoRA / PiSSA / MiLoRA adapter initialisations in PEFT's format
 * (paper §5.2; PiSSA: Meng et al. 2024; MiLoRA: Wang et al. 2024).
 *
 * For each target weight W [out, in] (PyTorch layout) and scale = lora_alpha / r:
 * - lora:   A [r, in] ~ U(−1/√in, 1/√in) (PEFT's kaiming_uniform_(a=√5)), B [out, r] = 0.
 *           The base is used as is.
 * - pissa:  the top-r singular triplets: A = diag(√(S_r/scale))·V_rᵀ, B = U_r·diag(√(S_r/scale)),
 *           so scale·B·A = U_r S_r V_rᵀ (PEFT's pissa_init); the residual W − scale·B·A is
 *           written as a new base checkpoint.
 * - milora: the same with the r minor (smallest) singular triplets — the off-principal
 *           directions the paper's theory favours for RL.
 * The residual is computed from the adapter exactly as stored (fp32), W_res = W − scale·B·A
 * (as PEFT does, so an inexact SVD never breaks base + adapter = W), then stored in the
 * base's dtype; the merge error reported is that storage rounding.
 *
 * Decompositions (`svd`):
 * - 'fast' (default): PiSSA uses the residual-converged randomized `topKSVD` (cost
 *   ~ iterations·4·m·n·(r+16) flops); MiLoRA uses the fp64 Gram matrix of the short side
 *   (WᵀW or WWᵀ, m·n·min(m,n) flops) and `symmetricEigen` (~3·min(m,n)³ flops), taking the
 *   r smallest eigenpairs: σ_i = √λ_i, the other side as W·v_i/σ_i. Squaring the matrix
 *   costs relative accuracy ε·(σ_max/σ_i)² in σ_i — ~1e-10 for condition numbers up to
 *   1e3 — and does not affect base + adapter = W (see above). For a 1536×8960 weight that
 *   is ~2·10¹⁰ + 10¹⁰ fp64 flops, tens of seconds in pure TypeScript.
 * - 'exact': `exactSVD` (fp64 one-sided Jacobi) for both; slow beyond ~1000 columns.
 * A `decompose` hook lets a caller supply cached base decompositions instead.
 *
 * Output folder (written atomically via a temp folder next to it):
 *   adapter_config.json        PEFT LoraConfig keys (peft_type LORA, r, lora_alpha,
 *                              target_modules, init_lora_weights true — the weights are
 *                              given, so PEFT must not re-initialise or re-decompose).
 *   adapter_model.safetensors  F32 `base_model.model.<module>.lora_A.weight` [r, in] and
 *                              `.lora_B.weight` [out, r] (names as PEFT saves them).
 *   rlvr_lens_adapter.json     what was done, singular values, merge errors per module.
 *   residual_base/             (pissa, milora) the full base checkpoint with each target
 *                              weight replaced by its residual; everything else bit for bit.
 * Load in Python: PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(
 *   "<out>/residual_base"), "<out>", is_trainable=True) (plain base for lora).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlvrError, UsageError } from '../errors.js';
import { type DType, decodeToFloat64, encodeFromFloat32 } from '../io/dtype.js';
import { type TensorSource, openCheckpoint } from '../io/checkpoint.js';
import { type TensorToWrite, writeFileAtomic, writeSafetensors } from '../io/writer.js';
import { type LayerSelection, checkOutputFolder, commitFolder, copySideFiles, parseLayerList, rewriteCheckpoint, tempFolderNextTo } from '../interventions/intervene.js';
import { exactSVD, linalgBackend, matmul64, symmetricEigen, topKSVD } from '../linalg/index.js';
import type { Mat64 } from '../linalg/index.js';
import { compareTensorNames, isLinearWeight, parseTensorName } from '../model/names.js';
import { envelope, toJson } from '../report/output.js';
import { DecompositionCache, defaultCacheDir } from '../run/cache.js';
import { DEFAULT_SOLVER, baseDecompositionKey } from '../run/geometry.js';
import { Rng } from '../util/random.js';
import { VERSION } from '../version.js';

export type AdapterInit = 'lora' | 'pissa' | 'milora';

/** A weight's stored bytes (for content-keyed caches). */
export interface RawTensor { dtype: DType; bytes: Uint8Array }
export const ADAPTER_INITS: readonly AdapterInit[] = ['lora', 'pissa', 'milora'];

/** r singular triplets of W: U [m×r], S [r] (descending), V [n×r]. */
export interface Triplets { U: Mat64; S: Float64Array; V: Mat64; method: string }

export interface AdapterOptions {
  base: string;
  out: string;
  init: AdapterInit;
  rank: number;
  /** lora_alpha; scale = alpha / rank. */
  alpha: number;
  /** PEFT target_modules: module-name suffixes such as q_proj, v_proj, down_proj; `all-linear` = every linear weight but lm_head. */
  targets: readonly string[];
  /** Restrict to these decoder layers (PEFT layers_to_transform); default all. */
  layers?: LayerSelection;
  seed?: number;
  dropout?: number;
  svd?: 'fast' | 'exact';
  /** Where the residual base goes (pissa/milora); default `<out>/residual_base`. */
  residualOut?: string;
  force?: boolean;
  /** Base-decomposition cache folder read for PiSSA (null: none; default `defaultCacheDir()`). */
  cacheDir?: string | null;
  /** GEMM threads for topKSVD. */
  threads?: number;
  /** Supplies r triplets for a weight (e.g. from another cache of base decompositions). */
  decompose?: (name: string, w: Float64Array, rows: number, cols: number, r: number, which: 'top' | 'bottom') => Promise<Triplets | null>;
  onModule?: (module: string, done: number, total: number) => void;
}

export interface ModuleReport {
  module: string;
  shape: [number, number];
  /** The r singular values in the adapter (pissa/milora), descending. */
  singularValues: number[] | null;
  /** Σ S_r² / ‖W‖_F²: the share of W's energy moved into the adapter. */
  energyInAdapter: number;
  decomposition: string | null;
  /** ‖scale·B·A − U_r S_r V_rᵀ‖_F / ‖U_r S_r V_rᵀ‖_F with A, B as stored (fp32). */
  factorRelError: number;
  /** max |W − (W_res + scale·B·A)| with W_res kept in fp32. */
  mergeMaxAbsErrorF32: number;
  /** The same with W_res as stored in the residual checkpoint (the base's dtype). */
  mergeMaxAbsErrorStored: number;
  /** max |W| (the scale of the errors). */
  maxAbsWeight: number;
}

export interface AdapterResult {
  out: string;
  residualBase: string | null;
  init: AdapterInit;
  rank: number;
  alpha: number;
  scale: number;
  seed: number;
  targets: string[];
  residualDtype: DType | null;
  modules: ModuleReport[];
  /** max over modules of mergeMaxAbsErrorF32 / mergeMaxAbsErrorStored. */
  maxMergeErrorF32: number;
  maxMergeErrorStored: number;
  adapterParams: number;
}

/** FNV-1a of a string: the per-module seed offset (so each module's LoRA A is independent of the target set). */
export function moduleSeed(seed: number, module: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < module.length; i++) { h ^= module.charCodeAt(i); h = Math.imul(h, 0x01000193) >>> 0; }
  return (h ^ (seed >>> 0)) >>> 0;
}

/** PEFT's LoRA A init (kaiming_uniform_ with a=√5): U(−1/√in, 1/√in), from Rng(moduleSeed(seed, module)). */
export function loraA(rank: number, inFeatures: number, seed: number, module: string): Float32Array {
  const rng = new Rng(moduleSeed(seed, module));
  const bound = 1 / Math.sqrt(inFeatures);
  const a = new Float32Array(rank * inFeatures);
  for (let i = 0; i < a.length; i++) a[i] = (2 * rng.uniform() - 1) * bound;
  return a;
}

/** The r smallest singular triplets via the fp64 Gram matrix of the short side (see header). */
export function minorTriplets(w: Float64Array, m: number, n: number, r: number): Triplets {
  const W: Mat64 = { rows: m, cols: n, data: w };
  const short = Math.min(m, n);
  // Gram of the short side: n×n = WᵀW when tall, m×m = WWᵀ when wide.
  const G = m >= n ? matmul64(W, W, { transA: true }) : matmul64(W, W, { transB: true });
  const eig = symmetricEigen(G);
  const S = new Float64Array(r);
  const X: Mat64 = { rows: short, cols: r, data: new Float64Array(short * r) }; // eigenvectors of the short side
  for (let c = 0; c < r; c++) {
    const src = short - r + c; // descending order: the last r are the smallest
    S[c] = Math.sqrt(Math.max(0, eig.values[src]!));
    for (let i = 0; i < short; i++) X.data[i * r + c] = eig.vectors.data[i * short + src]!;
  }
  // Other side: W·v / σ (tall) or Wᵀ·u / σ (wide); a zero σ leaves a zero column (its B·A term is 0 anyway).
  const Y = m >= n ? matmul64(W, X) : matmul64(W, X, { transA: true });
  const long = Y.rows;
  for (let c = 0; c < r; c++) {
    const s = S[c]!;
    for (let i = 0; i < long; i++) Y.data[i * r + c] = s > 0 ? Y.data[i * r + c]! / s : 0;
  }
  return m >= n ? { U: Y, S, V: X, method: 'gram-eigen-fp64' } : { U: X, S, V: Y, method: 'gram-eigen-fp64' };
}

function sliceTriplets(f: { U: Mat64; S: Float64Array; V: Mat64 }, c0: number, c1: number, method: string): Triplets {
  const take = (M: Mat64): Mat64 => {
    const out = new Float64Array(M.rows * (c1 - c0));
    for (let i = 0; i < M.rows; i++) for (let c = c0; c < c1; c++) out[i * (c1 - c0) + c - c0] = M.data[i * M.cols + c]!;
    return { rows: M.rows, cols: c1 - c0, data: out };
  };
  return { U: take(f.U), S: f.S.slice(c0, c1), V: take(f.V), method };
}

async function decomposeWeight(
  opts: AdapterOptions, name: string, w: Float64Array, m: number, n: number, r: number, which: 'top' | 'bottom', raw?: RawTensor,
): Promise<Triplets> {
  const given = await opts.decompose?.(name, w, m, n, r, which);
  if (given) return given;
  const short = Math.min(m, n);
  if (opts.svd === 'exact') {
    const f = exactSVD({ rows: m, cols: n, data: w });
    return which === 'top' ? sliceTriplets(f, 0, r, 'exact-jacobi-fp64') : sliceTriplets(f, short - r, short, 'exact-jacobi-fp64');
  }
  if (which === 'bottom') return minorTriplets(w, m, n, r);
  // Top r: the base-decomposition cache first (an analysis run with k = r stored them).
  const threads = opts.threads ?? 1;
  const cache = new DecompositionCache(opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir);
  if (cache.dir !== null && raw) {
    // The key the geometry pass (analyze / spectrum with k = r, default solver settings) wrote.
    const dec = cache.get(baseDecompositionKey(name, raw.bytes, raw.dtype, [m, n], r, false, { ...DEFAULT_SOLVER, backend: await linalgBackend(), threads }));
    if (dec) return { U: dec.U, S: dec.S, V: dec.V, method: `${dec.info.method} (cached, residual ${dec.info.residual.toExponential(2)})` };
  }
  const f = await topKSVD({ rows: m, cols: n, data: Float32Array.from(w) }, r, { seed: 0, threads });
  return { U: f.U, S: f.S, V: f.V, method: `${f.method} (residual ${f.residual.toExponential(2)}, ${f.converged ? 'converged' : 'NOT converged'})` };
}

/** The 2-D weights PEFT would wrap for `targets` (module name equal to or ending in `.target`). */
export function findTargetModules(src: TensorSource, targets: readonly string[], layers: readonly number[] | null): string[] {
  const found: string[] = [];
  const hit = new Set<string>();
  for (const name of src.names) {
    if (!name.endsWith('.weight')) continue;
    const p = parseTensorName(name);
    const info = src.info(name);
    if (info.shape.length !== 2 || p.kind === 'embed' || p.kind === 'norm') continue;
    const module = name.slice(0, -'.weight'.length);
    const t = targets.find((x) => module === x || module.endsWith('.' + x));
    if (t === undefined) continue;
    if (layers && (p.layer === null || !layers.includes(p.layer))) continue;
    hit.add(t);
    found.push(module);
  }
  const missing = targets.filter((t) => !hit.has(t));
  if (missing.length) {
    const avail = [...new Set(src.names.filter((n) => n.endsWith('.weight') && src.info(n).shape.length === 2 && parseTensorName(n).kind !== 'embed')
      .map((n) => n.slice(0, -'.weight'.length).split('.').pop()!))].sort();
    throw new UsageError(`--targets: ${missing.join(', ')} match${missing.length === 1 ? 'es' : ''} no 2-D weight${layers ? ' in the chosen layers' : ''} (available: ${avail.join(', ')})`);
  }
  return found.sort(compareTensorNames);
}

/** The adapter_config.json PEFT's LoraConfig reads (keys present since PEFT 0.10). */
export function peftConfig(o: { base: string; rank: number; alpha: number; targets: readonly string[]; dropout: number; layers: readonly number[] | null }): Record<string, unknown> {
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: o.base,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: false,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: o.layers ? [...o.layers] : null,
    loftq_config: {},
    lora_alpha: o.alpha,
    lora_dropout: o.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: o.rank,
    rank_pattern: {},
    revision: null,
    target_modules: [...o.targets],
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: false,
  };
}

function f32Bytes(a: Float32Array): Uint8Array { return new Uint8Array(a.buffer, a.byteOffset, a.byteLength); }

/** See the module header. Throws RlvrError on bad input; nothing is written then. */
export async function buildAdapter(opts: AdapterOptions): Promise<AdapterResult> {
  if (!ADAPTER_INITS.includes(opts.init)) throw new UsageError(`--init must be one of ${ADAPTER_INITS.join(', ')}, not ${JSON.stringify(opts.init)}`);
  if (!Number.isInteger(opts.rank) || opts.rank < 1) throw new UsageError(`--rank must be a positive integer, not ${opts.rank}`);
  if (!(Number.isFinite(opts.alpha) && opts.alpha > 0)) throw new UsageError(`--alpha must be a positive number, not ${opts.alpha}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError(`--seed must be an integer in 0..4294967295, not ${seed}`);
  const dropout = opts.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new UsageError(`--dropout must be in [0, 1), not ${dropout}`);
  let targets = [...new Set(opts.targets.map((t) => t.trim()).filter(Boolean))];
  if (targets.length === 0) throw new UsageError('--targets: give at least one module name, e.g. q_proj,v_proj');
  const { rank: r, alpha } = opts;
  const scale = alpha / r;

  const src = openCheckpoint(opts.base);
  let tmp: string | null = null;
  try {
    const numLayers = src.config?.numLayers;
    let layers: number[] | null = null;
    if (opts.layers !== undefined) {
      if (typeof opts.layers === 'string') {
        if (numLayers === undefined) throw new UsageError('--layers needs num_hidden_layers in config.json');
        layers = parseLayerList(opts.layers, numLayers, '--layers');
      } else layers = [...opts.layers].sort((a, b) => a - b);
    }
    if (targets.includes('all-linear')) {
      // PEFT's "all-linear": every linear layer of the decoder (not lm_head), expanded to names.
      const names = src.names.filter((n) => isLinearWeight(parseTensorName(n), src.info(n).shape)).map((n) => n.slice(0, -'.weight'.length).split('.').pop()!);
      targets = [...new Set([...targets.filter((t) => t !== 'all-linear'), ...names])].sort();
    }
    const modules = findTargetModules(src, targets, layers);
    for (const mod of modules) {
      const [m, n] = src.info(mod + '.weight').shape as [number, number];
      if (r > Math.min(m, n)) throw new UsageError(`--rank ${r} is larger than ${mod}.weight (${m}×${n}, rank at most ${Math.min(m, n)})`);
    }
    const withResidual = opts.init !== 'lora';
    const outAbs = checkOutputFolder(opts.out, src.root, opts.force === true);
    const residualAbs = withResidual ? path.resolve(opts.residualOut ?? path.join(outAbs, 'residual_base')) : null;
    if (residualAbs && opts.residualOut !== undefined) checkOutputFolder(residualAbs, src.root, opts.force === true);

    // 1. The adapter factors (small), one module at a time.
    const adapter: TensorToWrite[] = [];
    const factors = new Map<string, { A: Float32Array; B: Float32Array; m: number; n: number; tri: Triplets | null }>();
    let done = 0;
    for (const mod of modules) {
      const wName = mod + '.weight';
      const [m, n] = src.info(wName).shape as [number, number];
      let A: Float32Array, B: Float32Array, tri: Triplets | null = null;
      if (opts.init === 'lora') {
        A = loraA(r, n, seed, mod);
        B = new Float32Array(m * r);
      } else {
        const bytes = src.readBytes(wName);
        tri = await decomposeWeight(opts, wName, decodeToFloat64(bytes, src.info(wName).dtype), m, n, r, opts.init === 'pissa' ? 'top' : 'bottom', { dtype: src.info(wName).dtype, bytes });
        A = new Float32Array(r * n); B = new Float32Array(m * r);
        for (let c = 0; c < r; c++) {
          const s = Math.sqrt(tri.S[c]! / scale);
          for (let j = 0; j < n; j++) A[c * n + j] = s * tri.V.data[j * r + c]!;
          for (let i = 0; i < m; i++) B[i * r + c] = s * tri.U.data[i * r + c]!;
        }
      }
      factors.set(mod, { A, B, m, n, tri });
      adapter.push({ name: `base_model.model.${mod}.lora_A.weight`, dtype: 'F32', shape: [r, n], data: f32Bytes(A) });
      adapter.push({ name: `base_model.model.${mod}.lora_B.weight`, dtype: 'F32', shape: [m, r], data: f32Bytes(B) });
      opts.onModule?.(mod, ++done, modules.length);
    }

    // 2. Residuals (produced while the residual checkpoint streams out) and the merge check.
    const reports = new Map<string, ModuleReport>();
    let residualDtype: DType | null = null;
    const report = (mod: string, w: Float64Array, stored: Float64Array | null, resF32: Float64Array | null, ba: Float64Array | null): void => {
      const f = factors.get(mod)!;
      let maxW = 0, e32 = 0, eSt = 0, wF = 0;
      for (let i = 0; i < w.length; i++) {
        maxW = Math.max(maxW, Math.abs(w[i]!));
        wF += w[i]! * w[i]!;
        if (ba && resF32 && stored) {
          e32 = Math.max(e32, Math.abs(w[i]! - (resF32[i]! + ba[i]!)));
          eSt = Math.max(eSt, Math.abs(w[i]! - (stored[i]! + ba[i]!)));
        }
      }
      let factorRelError = 0, energy = 0;
      if (f.tri && ba) {
        // ‖scale·BA − U S Vᵀ‖ / ‖U S Vᵀ‖, with U S Vᵀ rebuilt in fp64.
        const usv = matmul64(scaleCols(f.tri.U, f.tri.S), f.tri.V, { transB: true }).data;
        let num = 0, den = 0;
        for (let i = 0; i < usv.length; i++) { num += (ba[i]! - usv[i]!) ** 2; den += usv[i]! ** 2; }
        factorRelError = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
        for (const s of f.tri.S) energy += s * s;
        energy = wF > 0 ? energy / wF : 0;
      }
      reports.set(mod, {
        module: mod, shape: [f.m, f.n], singularValues: f.tri ? Array.from(f.tri.S) : null, energyInAdapter: energy,
        decomposition: f.tri?.method ?? null, factorRelError, mergeMaxAbsErrorF32: e32, mergeMaxAbsErrorStored: eSt, maxAbsWeight: maxW,
      });
    };
    tmp = tempFolderNextTo(outAbs);
    const residualTmp = residualAbs ? (opts.residualOut !== undefined ? tempFolderNextTo(residualAbs) : path.join(tmp, 'residual_base')) : null;
    try {
      if (residualTmp && residualAbs) {
        if (!fs.existsSync(residualTmp)) fs.mkdirSync(residualTmp);
        const replaced = new Map<string, () => Uint8Array>();
        for (const mod of modules) {
          const wName = mod + '.weight';
          const dtype = src.info(wName).dtype;
          if (dtype !== 'BF16' && dtype !== 'F16' && dtype !== 'F32' && dtype !== 'F64') {
            throw new RlvrError(`${wName} is ${dtype}; a residual base needs BF16, F16, F32 or F64 weights`, { file: src.info(wName).file, code: 'E_DTYPE' });
          }
          residualDtype = dtype;
          replaced.set(wName, () => {
            const f = factors.get(mod)!;
            const w = src.readFloat64(wName);
            const ba = matmul64({ rows: f.m, cols: r, data: Float64Array.from(f.B) }, { rows: r, cols: f.n, data: Float64Array.from(f.A) }).data;
            for (let i = 0; i < ba.length; i++) ba[i] = scale * ba[i]!;
            const res32 = new Float32Array(w.length);
            for (let i = 0; i < w.length; i++) res32[i] = w[i]! - ba[i]!;
            const bytes = dtype === 'F64'
              ? new Uint8Array(Float64Array.from(w, (x, i) => x - ba[i]!).buffer)
              : encodeFromFloat32(res32, dtype);
            const stored = decodeToFloat64(bytes, dtype);
            report(mod, w, stored, Float64Array.from(res32), ba);
            return bytes;
          });
        }
        const metadata = { ...src.metadata, 'rlvr_lens.residual': JSON.stringify({ tool: 'rlvr-lens', version: VERSION, init: opts.init, rank: r, lora_alpha: alpha, scale, modules: modules.length }) };
        rewriteCheckpoint(src, residualTmp, replaced, metadata);
        copySideFiles(src, residualTmp);
      } else {
        for (const mod of modules) report(mod, src.readFloat64(mod + '.weight'), null, null, null);
      }

      const baseName = residualAbs ?? (fs.existsSync(opts.base) ? path.resolve(opts.base) : opts.base);
      const summary = { tool: 'rlvr-lens', version: VERSION, init: opts.init, rank: r, lora_alpha: alpha, scale, seed };
      writeSafetensors(path.join(tmp, 'adapter_model.safetensors'), adapter, { format: 'pt', 'rlvr_lens.adapter': JSON.stringify(summary) });
      writeFileAtomic(path.join(tmp, 'adapter_config.json'), JSON.stringify(peftConfig({ base: baseName, rank: r, alpha, targets, dropout, layers }), null, 2) + '\n');
      const mods = modules.map((m) => reports.get(m)!);
      const result: AdapterResult = {
        out: outAbs, residualBase: residualAbs, init: opts.init, rank: r, alpha, scale, seed, targets, residualDtype,
        modules: mods,
        maxMergeErrorF32: Math.max(0, ...mods.map((x) => x.mergeMaxAbsErrorF32)),
        maxMergeErrorStored: Math.max(0, ...mods.map((x) => x.mergeMaxAbsErrorStored)),
        adapterParams: modules.reduce((a, m) => a + r * (factors.get(m)!.m + factors.get(m)!.n), 0),
      };
      writeFileAtomic(path.join(tmp, 'rlvr_lens_adapter.json'), toJson(envelope('adapter', {
        ...summary, base: opts.base, targets, layers, svd: opts.init === 'lora' ? null : opts.svd ?? 'fast',
        residual_base: residualAbs ? (opts.residualOut !== undefined ? residualAbs : 'residual_base') : null,
        residual_dtype: residualDtype, adapter_params: result.adapterParams,
        max_merge_error_f32: result.maxMergeErrorF32, max_merge_error_stored: result.maxMergeErrorStored,
        lora_init: 'A ~ U(-1/sqrt(in), 1/sqrt(in)) from Rng(moduleSeed(seed, module)), B = 0',
        modules: mods,
      })));
      if (residualTmp && residualAbs && opts.residualOut !== undefined) commitFolder(residualTmp, residualAbs);
      commitFolder(tmp, outAbs);
      tmp = null;
      return result;
    } catch (e) {
      if (residualTmp && opts.residualOut !== undefined) fs.rmSync(residualTmp, { recursive: true, force: true });
      throw e;
    }
  } finally {
    src.close();
    if (tmp) try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* best effort */ }
  }
}

function scaleCols(U: Mat64, s: Float64Array): Mat64 {
  const out = new Float64Array(U.data.length);
  for (let i = 0; i < U.rows; i++) for (let c = 0; c < U.cols; c++) out[i * U.cols + c] = U.data[i * U.cols + c]! * s[c]!;
  return { rows: U.rows, cols: U.cols, data: out };
}
