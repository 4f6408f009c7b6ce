/**
 * `intervene(...)`: write a function-preserving scrambled copy of a checkpoint (SPEC §6,
 * paper §4.3 / App. D) — V/O rotations (rotate.ts) and kv-head permutations (permute.ts)
 * in chosen layers — and prove it preserves function with a forward pass of every touched
 * attention block on seeded random inputs (verify.ts).
 *
 * Layers are 0-based decoder-layer indices as in the tensor names (`model.layers.25.…`).
 * A layer listed for both is rotated first and then permuted: its kv head π(g) ends up
 * carrying R_gᵀ V_g (R indexed by the ORIGINAL kv head g).
 *
 * Supported: Hugging Face Llama / Mistral / Qwen2 (q/k/v biases) / Qwen3 (q_norm, k_norm)
 * style attention (`self_attn.{q,k,v,o}_proj`) with GQA or MHA, dense or MoE MLPs. Anything
 * else under `self_attn.` (fused qkv, MLA, attention sinks, full-width q_norm) is refused.
 *
 * Output: a complete checkpoint in `out` — every tensor not touched is copied bit for bit,
 * the input's sharding (file names, which tensor in which shard, tensor order) is kept, an
 * index is written when the input had one, non-weight files (config, tokenizer, generation
 * config, …) are copied — plus `rlvr_lens/intervention.json` (what was done, the
 * verification numbers) and `rlvr_lens/rotations.safetensors` (the exact fp64 R matrices,
 * `layers.<L>.R` of shape [H_kv, D, D], and kv permutations `layers.<L>.perm` as I64). The
 * rotations can also be regenerated from the seed (`drawRotations`), the permutations with
 * `drawPermutation`. Each shard's safetensors metadata keeps the input's (e.g. format=pt)
 * and adds `rlvr_lens.intervention` (compact JSON summary).
 *
 * Everything is written into a temporary folder next to `out` and renamed at the end, so a
 * failure (bad input, failed verification, full disk) leaves nothing behind. The input is
 * only read.
 *
 * Storage: rotated tensors are computed in fp64 from the decoded weights and stored back
 * in their own dtype (bf16/f16 round to nearest even via fp32; f32; f64). Permutation moves
 * bytes and is exact for any dtype.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, RlvrError, UsageError, fromSystemError } from '../errors.js';
import { type DType, ITEMSIZE, encodeFromFloat32 } from '../io/dtype.js';
import { type TensorSource, openCheckpoint } from '../io/checkpoint.js';
import { type TensorToWrite, writeCheckpointFiles, writeFileAtomic, writeSafetensors } from '../io/writer.js';
import { type AttentionLayout, requireAttentionLayout } from '../model/config.js';
import { parseTensorName } from '../model/names.js';
import { envelope, toJson } from '../report/output.js';
import { VERSION } from '../version.js';
import {
  drawPermutation, expandToQueryHeads, isPermutation, permuteColumnBlocks, permuteRowBlocks,
} from './permute.js';
import { type RotationKind, drawRotations, isPowerOfTwo, orthogonalityError, rotateVO } from './rotate.js';
import {
  type AttentionGeometry, type AttentionWeights, type OutputDifference, roundingErrorEstimate, verifyAttentionInvariance,
} from './verify.js';

/** Layer indices, or a spec string parsed by `parseLayerList`. */
export type LayerSelection = string | readonly number[];

export interface InterventionOptions {
  /** Input checkpoint spec (file, folder, sharded folder, HF cache id). */
  base: string;
  /** Output folder (must not exist unless `force`). */
  out: string;
  /** Layers whose V/O get rotated: indices, or a list spec like "25", "20-27", "3,5,7-9", "all". */
  rotateLayers?: LayerSelection;
  /** Layers whose heads get permuted (same forms). */
  permuteLayers?: LayerSelection;
  seed: number;
  rotation?: RotationKind;
  /** One R for all kv heads of a layer (paper App. D) instead of one per kv head (SPEC §6). */
  sharedRotation?: boolean;
  /** Explicit kv-head permutations per layer (e.g. an inverse), overriding the seeded draw. */
  permutations?: Readonly<Record<number, readonly number[]>>;
  /** Replace an existing output folder. */
  force?: boolean;
  /** Tokens in the verification forward pass (default 16). */
  verifyTokens?: number;
  /** Called as each tensor is written, with the checkpoint's total tensor bytes (for progress bars). */
  onTensor?: (name: string, bytes: number, totalBytes: number) => void;
}

export interface LayerVerification {
  tokens: number;
  inputSeed: number;
  /** Original weights vs the weights as stored in `out`. */
  stored: OutputDifference;
  /** Original weights vs the intervened weights before storage rounding (rotation only). */
  exactArithmetic: OutputDifference | null;
  /** A-priori relative Frobenius error from storage rounding (rotation only; 0 if permutation only). */
  estimatedRelFrobenius: number;
  /** Set when the stored difference is over 10× the estimate (reported, not fatal). */
  warning: string | null;
}

export interface LayerIntervention {
  layer: number;
  rotated: boolean;
  /** kv-head permutation π (kv head g moved to π[g]), or null. */
  permutation: number[] | null;
  /** The induced query-head permutation, or null. */
  queryPermutation: number[] | null;
  tensorsChanged: string[];
  /** max |RᵀR − I| over the layer's rotations (fp64), or null. */
  rotationOrthogonalityError: number | null;
  verification: LayerVerification;
}

export interface InterventionResult {
  out: string;
  base: string;
  modelType: string | null;
  layout: AttentionLayout;
  seed: number;
  rotation: RotationKind;
  sharedRotation: boolean;
  rotateLayers: number[];
  permuteLayers: number[];
  layers: LayerIntervention[];
  files: string[];
  copiedFiles: string[];
  skippedFiles: string[];
}

/** Names of one layer's attention tensors (null where absent). */
export interface AttentionTensorNames {
  q: string; k: string; v: string; o: string;
  qBias: string | null; kBias: string | null; vBias: string | null; oBias: string | null;
  qNorm: string | null; kNorm: string | null;
  inputNorm: string | null;
}

const KNOWN_ATTENTION_PARAMS = new Set([
  'q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight',
  'q_proj.bias', 'k_proj.bias', 'v_proj.bias', 'o_proj.bias',
  'q_norm.weight', 'k_norm.weight', 'rotary_emb.inv_freq',
]);

/**
 * Parses a layer list: "25", "20-27", "3,5,7-9", "all" (0-based, inclusive ranges),
 * checked against the model's layer count. Returns sorted unique indices.
 */
export function parseLayerList(spec: string, numLayers: number, option = 'layers'): number[] {
  const s = spec.trim();
  if (s === 'all') return Array.from({ length: numLayers }, (_, i) => i);
  const out = new Set<number>();
  for (const part of s.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new UsageError(`${option}: ${JSON.stringify(part)} is not a layer index or range (e.g. 25, 20-27, 3,5,7-9, all)`);
    const a = Number(m[1]), b = m[2] !== undefined ? Number(m[2]) : a;
    if (b < a) throw new UsageError(`${option}: range ${a}-${b} is empty`);
    for (const l of [a, b]) {
      if (l >= numLayers) throw new UsageError(`${option}: layer ${l} is out of range (the model has layers 0-${numLayers - 1})`);
    }
    for (let l = a; l <= b; l++) out.add(l);
  }
  return [...out].sort((x, y) => x - y);
}

/** Finds and checks one layer's attention tensors; FormatError if not a known form. */
export function locateAttention(src: TensorSource, layer: number, lay: AttentionLayout): AttentionTensorNames {
  const inLayer = src.names.filter((n) => parseTensorName(n).layer === layer);
  const qName = inLayer.find((n) => /(^|\.)self_attn\.q_proj\.weight$/.test(n) && parseTensorName(n).expert === null);
  if (!qName) {
    const attn = inLayer.filter((n) => /\.(self_attn|attn|attention)\./.test(n));
    const tail = (n: string): string => n.slice(n.search(/\.(self_attn|attn|attention)\./) + 1);
    // Unknown attention tensors first: they say what form this is.
    attn.sort((a, b) => Number(KNOWN_ATTENTION_PARAMS.has(tail(a).replace(/^[^.]+\./, ''))) - Number(KNOWN_ATTENTION_PARAMS.has(tail(b).replace(/^[^.]+\./, ''))));
    attn.splice(4);
    throw new FormatError(src.root, 'E_ATTENTION_FORM',
      `layer ${layer} has no self_attn.q_proj/k_proj/v_proj/o_proj attention of a known form (Llama/Mistral/Qwen2/Qwen3)` +
      (attn.length ? `; found ${attn.join(', ')}` : inLayer.length ? '' : '; the layer has no tensors'));
  }
  const prefix = qName.slice(0, -'q_proj.weight'.length); // "...layers.L.self_attn."
  const unknown = inLayer.filter((n) => n.startsWith(prefix) && !KNOWN_ATTENTION_PARAMS.has(n.slice(prefix.length)));
  if (unknown.length) {
    throw new FormatError(src.root, 'E_ATTENTION_FORM',
      `layer ${layer}: attention tensor ${unknown[0]} is not of a known form, so a rotation/permutation might not preserve function`);
  }
  const opt = (suffix: string): string | null => (src.has(prefix + suffix) ? prefix + suffix : null);
  const need = (suffix: string): string => {
    const n = opt(suffix);
    if (!n) throw new FormatError(src.root, 'E_ATTENTION_FORM', `layer ${layer} has ${qName} but no ${prefix + suffix}`);
    return n;
  };
  const names: AttentionTensorNames = {
    q: qName, k: need('k_proj.weight'), v: need('v_proj.weight'), o: need('o_proj.weight'),
    qBias: opt('q_proj.bias'), kBias: opt('k_proj.bias'), vBias: opt('v_proj.bias'), oBias: opt('o_proj.bias'),
    qNorm: opt('q_norm.weight'), kNorm: opt('k_norm.weight'),
    inputNorm: null,
  };
  const layerPrefix = prefix.slice(0, -'self_attn.'.length);
  if (src.has(layerPrefix + 'input_layernorm.weight')) names.inputNorm = layerPrefix + 'input_layernorm.weight';

  const { hiddenSize: hid, numHeads: hq, numKvHeads: hkv, headDim: d } = lay;
  const expect: [string | null, number[]][] = [
    [names.q, [hq * d, hid]], [names.k, [hkv * d, hid]], [names.v, [hkv * d, hid]], [names.o, [hid, hq * d]],
    [names.qBias, [hq * d]], [names.kBias, [hkv * d]], [names.vBias, [hkv * d]], [names.oBias, [hid]],
    [names.qNorm, [d]], [names.kNorm, [d]], [names.inputNorm, [hid]],
  ];
  for (const [n, shape] of expect) {
    if (n === null) continue;
    const got = src.info(n).shape;
    if (got.length !== shape.length || got.some((x, i) => x !== shape[i])) {
      throw new FormatError(src.root, 'E_ATTENTION_SHAPE',
        `${n} has shape [${got.join(', ')}], expected [${shape.join(', ')}] for ${hq} query heads, ${hkv} kv heads, head_dim ${d}, hidden ${hid} (heads do not divide the projection as config.json says)`);
    }
  }
  return names;
}

const FLOAT_STORE: ReadonlySet<DType> = new Set(['BF16', 'F16', 'F32', 'F64']);

function significandBits(dtype: DType): number {
  return dtype === 'BF16' ? 8 : dtype === 'F16' ? 11 : dtype === 'F32' ? 24 : 53;
}

/** Encodes fp64 values into `dtype` (bf16/f16 via fp32, round to nearest even). */
function encodeFloat64(values: Float64Array, dtype: DType): Uint8Array {
  if (dtype === 'F64') return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const f = Float32Array.from(values);
  if (dtype === 'BF16' || dtype === 'F16' || dtype === 'F32') return encodeFromFloat32(f, dtype);
  throw new Error(`encodeFloat64: ${dtype}`);
}

function readAttention(src: TensorSource, n: AttentionTensorNames, override?: ReadonlyMap<string, Float64Array>): AttentionWeights {
  const get = (name: string | null): Float64Array | null => (name === null ? null : override?.get(name) ?? src.readFloat64(name));
  return {
    q: get(n.q)!, k: get(n.k)!, v: get(n.v)!, o: get(n.o)!,
    qBias: get(n.qBias), kBias: get(n.kBias), vBias: get(n.vBias), oBias: get(n.oBias),
    qNorm: get(n.qNorm), kNorm: get(n.kNorm), inputNorm: get(n.inputNorm),
  };
}

function sameOrInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function realOrResolved(p: string): string {
  try { return fs.realpathSync(p); } catch { return path.resolve(p); }
}

/**
 * Checks that `out` can be (re)placed: it must not exist (unless `force`) and must not be
 * the input or contain it. Returns the absolute output path.
 */
export function checkOutputFolder(out: string, inputRoot: string, force: boolean): string {
  const abs = path.resolve(out);
  const inputFolder = fs.existsSync(inputRoot) && fs.statSync(inputRoot).isFile() ? path.dirname(inputRoot) : inputRoot;
  const realOut = realOrResolved(abs);
  if (sameOrInside(realOut, realOrResolved(inputFolder))) {
    throw new UsageError(`${out}: the output folder is the input checkpoint's folder or contains it; choose another --out`);
  }
  if (fs.existsSync(abs)) {
    if (!force) throw new RlvrError('output folder already exists (use --force to replace it)', { file: out, code: 'E_EXISTS' });
    if (!fs.statSync(abs).isDirectory()) throw new RlvrError('output path exists and is not a folder', { file: out, code: 'E_EXISTS' });
  }
  const parent = path.dirname(abs);
  if (!fs.existsSync(parent)) throw new RlvrError('parent folder does not exist', { file: parent, code: 'ENOENT' });
  return abs;
}

/** A fresh temp folder next to `dest`, removed again by the returned cleanup. */
export function tempFolderNextTo(dest: string): string {
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}`);
  try {
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
  } catch (e) {
    throw fromSystemError(e, tmp, 'create a temporary output folder');
  }
  return tmp;
}

/** Moves the finished temp folder to `dest`, replacing an existing `dest` (force). */
export function commitFolder(tmp: string, dest: string): void {
  let old: string | null = null;
  try {
    if (fs.existsSync(dest)) {
      old = path.join(path.dirname(dest), `.${path.basename(dest)}.old-${process.pid}`);
      fs.rmSync(old, { recursive: true, force: true });
      fs.renameSync(dest, old);
    }
    fs.renameSync(tmp, dest);
  } catch (e) {
    if (old && !fs.existsSync(dest) && fs.existsSync(old)) try { fs.renameSync(old, dest); } catch { /* keep old */ }
    throw fromSystemError(e, dest, 'move the finished output into place');
  }
  if (old) fs.rmSync(old, { recursive: true, force: true });
}

/** Files in a checkpoint folder that hold weights in another format (never copied: they would be stale). */
const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|ckpt|h5|msgpack|gguf|onnx|npz|pkl)$|(^|\/)model\.safetensors\.index\.json$|\.index\.json$/;
/** Small-file limit for copied side files (tokenizer.json of large vocabularies is ~10–30 MB). */
const MAX_SIDE_FILE = 256 * 2 ** 20;

/**
 * Copies the non-weight files of the input folder (config.json, tokenizer files,
 * generation_config.json, chat templates, README, …) into `dest`. Sub-folders and dot
 * files are skipped. Returns [copied, skipped] file names.
 */
export function copySideFiles(src: TensorSource, dest: string): [string[], string[]] {
  const folder = fs.statSync(src.root).isFile() ? path.dirname(src.root) : src.root;
  const shardNames = new Set(src.files.map((f) => path.resolve(f)));
  const copied: string[] = [], skipped: string[] = [];
  for (const entry of fs.readdirSync(folder).sort()) {
    if (entry.startsWith('.')) continue;
    const p = path.join(folder, entry);
    let st: fs.Stats;
    try { st = fs.statSync(p); } catch { skipped.push(entry); continue; }
    if (!st.isFile()) continue;
    if (shardNames.has(path.resolve(p)) || WEIGHT_FILE.test(entry) || st.size > MAX_SIDE_FILE) { skipped.push(entry); continue; }
    try {
      fs.copyFileSync(p, path.join(dest, entry));
    } catch (e) {
      throw fromSystemError(e, p, 'copy');
    }
    copied.push(entry);
  }
  return [copied, skipped.filter((s) => !shardNames.has(path.resolve(folder, s)))];
}

/** Tensors of `src` in storage order (shard order, then byte offset) — the order to rewrite them in. */
export function storageOrder(src: TensorSource): string[] {
  const fileIdx = new Map(src.files.map((f, i) => [f, i]));
  return [...src.names].sort((a, b) => {
    const ia = src.info(a), ib = src.info(b);
    return (fileIdx.get(ia.file)! - fileIdx.get(ib.file)!) || ia.fileOffset - ib.fileOffset;
  });
}

/**
 * Writes all tensors of `src` into `dir` with the input's sharding, replacing the bytes of
 * the tensors in `replaced` (given, or produced on demand — one tensor in memory at a time).
 * Returns the written files.
 */
export function rewriteCheckpoint(
  src: TensorSource, dir: string, replaced: ReadonlyMap<string, Uint8Array | (() => Uint8Array)>, metadata: Record<string, string>,
  onTensor?: (name: string, bytes: number, totalBytes: number) => void,
): string[] {
  const total = src.names.reduce((a, n) => a + src.info(n).byteLength, 0);
  const tensors: TensorToWrite[] = storageOrder(src).map((name) => {
    const info = src.info(name);
    return {
      name, dtype: info.dtype, shape: info.shape,
      data: () => {
        const r = replaced.get(name);
        const b = r === undefined ? src.readBytes(name) : typeof r === 'function' ? r() : r;
        onTensor?.(name, b.byteLength, total);
        return b;
      },
    };
  });
  const indexed = fs.statSync(src.root).isDirectory() && fs.existsSync(path.join(src.root, 'model.safetensors.index.json'));
  if (indexed) return writeCheckpointFiles(dir, tensors, metadata, (name) => path.basename(src.info(name).file));
  const dest = path.join(dir, path.basename(src.files[0]!));
  writeSafetensors(dest, tensors, metadata);
  return [dest];
}

/** The attention geometry of a model for the verification forward pass. */
function geometryOf(src: TensorSource, lay: AttentionLayout): AttentionGeometry {
  return {
    hiddenSize: lay.hiddenSize, numHeads: lay.numHeads, numKvHeads: lay.numKvHeads, headDim: lay.headDim,
    rmsNormEps: src.config?.rmsNormEps ?? 1e-6, ropeTheta: src.config?.ropeTheta ?? 10000,
  };
}

/** See the module header. Throws RlvrError on bad input; nothing is written then. */
export function intervene(opts: InterventionOptions): InterventionResult {
  const rotation: RotationKind = opts.rotation ?? 'haar';
  if (rotation !== 'haar' && rotation !== 'hadamard') throw new UsageError(`--rotation must be haar or hadamard, not ${JSON.stringify(rotation)}`);
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff) throw new UsageError(`--seed must be an integer in 0..4294967295, not ${opts.seed}`);
  if ((opts.rotateLayers ?? []).length === 0 && (opts.permuteLayers ?? []).length === 0 && Object.keys(opts.permutations ?? {}).length === 0) {
    throw new UsageError('nothing to do: give --rotate-vo and/or --permute-heads layers');
  }
  const tokens = opts.verifyTokens ?? 16;
  if (!Number.isInteger(tokens) || tokens < 1) throw new UsageError(`verifyTokens must be a positive integer, not ${tokens}`);

  const src = openCheckpoint(opts.base);
  let tmp: string | null = null;
  try {
    const configFile = path.join(fs.statSync(src.root).isFile() ? path.dirname(src.root) : src.root, 'config.json');
    const lay = requireAttentionLayout(configFile, src.config);
    const pick = (sel: LayerSelection | undefined, option: string): number[] =>
      typeof sel === 'string' ? parseLayerList(sel, lay.numLayers, option) : [...(sel ?? [])];
    const rotateLayers = [...new Set(pick(opts.rotateLayers, '--rotate-vo'))].sort((a, b) => a - b);
    const permuteLayers = [...new Set([...pick(opts.permuteLayers, '--permute-heads'), ...Object.keys(opts.permutations ?? {}).map(Number)])].sort((a, b) => a - b);
    for (const l of [...rotateLayers, ...permuteLayers]) {
      if (!Number.isInteger(l) || l < 0 || l >= lay.numLayers) {
        throw new UsageError(`layer ${l} is out of range (the model has layers 0-${lay.numLayers - 1})`);
      }
    }
    if (rotateLayers.length && rotation === 'hadamard' && !isPowerOfTwo(lay.headDim)) {
      throw new UsageError(`--rotation hadamard needs head_dim a power of 2; this model has head_dim ${lay.headDim} (use haar)`);
    }
    if (permuteLayers.length && lay.numKvHeads < 2) {
      throw new FormatError(configFile, 'E_ATTENTION_FORM', `the model has ${lay.numKvHeads} kv head: there are no kv heads to permute`);
    }
    const outAbs = checkOutputFolder(opts.out, src.root, opts.force === true);

    // Plan and compute everything before writing anything.
    const layers = [...new Set([...rotateLayers, ...permuteLayers])].sort((a, b) => a - b);
    const names = new Map(layers.map((l) => [l, locateAttention(src, l, lay)]));
    const replaced = new Map<string, Uint8Array>();
    const exactNew = new Map<string, Float64Array>(); // unrounded rotated tensors, for the exact-arithmetic check
    const rotationsOut: TensorToWrite[] = [];
    const plans: Omit<LayerIntervention, 'verification'>[] = [];
    const { headDim: d, numKvHeads: hkv, nRep } = lay;
    for (const layer of layers) {
      const n = names.get(layer)!;
      const changed: string[] = [];
      let orthErr: number | null = null;
      const rotated = rotateLayers.includes(layer);
      let perm: number[] | null = null;
      if (rotated) {
        for (const t of [n.v, n.o, n.vBias]) {
          if (t && !FLOAT_STORE.has(src.info(t).dtype)) throw new FormatError(src.info(t).file, 'E_DTYPE', `${t} is ${src.info(t).dtype}; rotation needs BF16, F16, F32 or F64`);
        }
        const rs = drawRotations(rotation, opts.seed, layer, hkv, d, opts.sharedRotation === true);
        orthErr = Math.max(...rs.map((r) => orthogonalityError(r, d)));
        const res = rotateVO(src.readFloat64(n.v), n.vBias ? src.readFloat64(n.vBias) : null, src.readFloat64(n.o), rs, lay);
        const pairs: [string | null, Float64Array | null][] = [[n.v, res.v], [n.o, res.o], [n.vBias, res.vBias]];
        for (const [name, vals] of pairs) {
          if (!name || !vals) continue;
          exactNew.set(name, vals);
          replaced.set(name, encodeFloat64(vals, src.info(name).dtype));
          changed.push(name);
        }
        const all = new Float64Array(hkv * d * d);
        rs.forEach((r, g) => all.set(r, g * d * d));
        rotationsOut.push({ name: `layers.${layer}.R`, dtype: 'F64', shape: [hkv, d, d], data: new Uint8Array(all.buffer) });
      }
      if (permuteLayers.includes(layer)) {
        const given = opts.permutations?.[layer];
        if (given && !isPermutation(given, hkv)) throw new UsageError(`layer ${layer}: ${JSON.stringify(given)} is not a permutation of the ${hkv} kv heads`);
        perm = given ? [...given] : drawPermutation(opts.seed, layer, hkv);
        const qPerm = expandToQueryHeads(perm, nRep);
        const bytesOf = (name: string): Uint8Array => replaced.get(name) ?? src.readBytes(name);
        const item = (name: string): number => ITEMSIZE[src.info(name).dtype];
        for (const name of [n.k, n.v]) replaced.set(name, permuteRowBlocks(bytesOf(name), perm, d * lay.hiddenSize * item(name)));
        for (const name of [n.kBias, n.vBias]) if (name) replaced.set(name, permuteRowBlocks(bytesOf(name), perm, d * item(name)));
        replaced.set(n.q, permuteRowBlocks(bytesOf(n.q), qPerm, d * lay.hiddenSize * item(n.q)));
        if (n.qBias) replaced.set(n.qBias, permuteRowBlocks(bytesOf(n.qBias), qPerm, d * item(n.qBias)));
        replaced.set(n.o, permuteColumnBlocks(bytesOf(n.o), qPerm, lay.hiddenSize, d * item(n.o)));
        // Keep the unrounded rotated tensors in step with the permutation.
        for (const [name, vals] of [...exactNew]) {
          if (name === n.v || name === n.vBias) exactNew.set(name, permuteFloat64Rows(vals, perm, name === n.v ? d * lay.hiddenSize : d));
          if (name === n.o) exactNew.set(name, permuteFloat64Cols(vals, qPerm, lay.hiddenSize, d));
        }
        for (const t of [n.q, n.k, n.v, n.o, n.qBias, n.kBias, n.vBias]) if (t && !changed.includes(t)) changed.push(t);
        rotationsOut.push({ name: `layers.${layer}.perm`, dtype: 'I64', shape: [hkv], data: new Uint8Array(BigInt64Array.from(perm.map(BigInt)).buffer) });
      }
      plans.push({
        layer, rotated, permutation: perm, queryPermutation: perm ? expandToQueryHeads(perm, nRep) : null,
        tensorsChanged: changed.sort(), rotationOrthogonalityError: orthErr,
      });
    }

    const summary = {
      tool: 'rlvr-lens', version: VERSION, seed: opts.seed, rotation, shared_rotation: opts.sharedRotation === true,
      rotate_vo_layers: rotateLayers, permute_heads_layers: permuteLayers,
      permutations: Object.fromEntries(plans.filter((p) => p.permutation).map((p) => [String(p.layer), p.permutation])),
      order: 'rotate V/O, then permute heads',
      rotations_file: 'rlvr_lens/rotations.safetensors',
      regenerate: 'rlvr-lens drawRotations(kind, seed, layer, numKvHeads, headDim, shared) / drawPermutation(seed, layer, numKvHeads)',
    };
    const metadata: Record<string, string> = { ...src.metadata, 'rlvr_lens.intervention': JSON.stringify(summary) };

    tmp = tempFolderNextTo(outAbs);
    const files = rewriteCheckpoint(src, tmp, replaced, metadata, opts.onTensor);
    const [copiedFiles, skippedFiles] = copySideFiles(src, tmp);

    // Verify on what was actually written.
    const geo = geometryOf(src, lay);
    const written = openCheckpoint(tmp);
    const layerResults: LayerIntervention[] = [];
    try {
      for (const plan of plans) {
        const n = names.get(plan.layer)!;
        const before = readAttention(src, n);
        const after = readAttention(written, n);
        const inputSeed = (opts.seed ^ Math.imul(plan.layer + 1, 0x85ebca6b)) >>> 0;
        const stored = verifyAttentionInvariance(before, after, geo, { seed: inputSeed, tokens });
        let exactArithmetic: OutputDifference | null = null;
        let estimate = 0;
        let warning: string | null = null;
        if (plan.rotated) {
          const exact = readAttention(written, n, exactNew);
          exactArithmetic = verifyAttentionInvariance(before, exact, geo, { seed: inputSeed, tokens });
          estimate = roundingErrorEstimate(Math.min(significandBits(src.info(n.v).dtype), significandBits(src.info(n.o).dtype)));
          // The gate is the exact-arithmetic result (it checks the algebra); the stored result
          // depends on how much the block's output cancels, so it is reported, and flagged
          // when far above the estimate, but does not block the output.
          if (!(exactArithmetic.relFrobenius < 1e-8)) {
            throw new RlvrError(`layer ${plan.layer}: verification failed (relative output difference ${exactArithmetic.relFrobenius.toExponential(3)} before storage rounding, expected ~1e-15) — nothing written`, { code: 'E_VERIFY' });
          }
          if (!(stored.relFrobenius < 10 * estimate)) {
            warning = `stored relative output difference ${stored.relFrobenius.toExponential(3)} is over 10× the rounding estimate ${estimate.toExponential(3)} (the block output cancels strongly on random inputs)`;
          }
        } else if (stored.maxAbsDiff !== 0) {
          throw new RlvrError(`layer ${plan.layer}: head permutation changed the block output by ${stored.maxAbsDiff} — nothing written`, { code: 'E_VERIFY' });
        }
        layerResults.push({ ...plan, verification: { tokens, inputSeed, stored, exactArithmetic, estimatedRelFrobenius: estimate, warning } });
      }
    } finally {
      written.close();
    }

    const result: InterventionResult = {
      out: outAbs, base: opts.base, modelType: src.config?.modelType ?? null, layout: lay, seed: opts.seed, rotation,
      sharedRotation: opts.sharedRotation === true, rotateLayers, permuteLayers, layers: layerResults,
      files: files.map((f) => path.join(outAbs, path.relative(tmp!, f))), copiedFiles, skippedFiles,
    };
    const side = path.join(tmp, 'rlvr_lens');
    fs.mkdirSync(side);
    if (rotationsOut.length) writeSafetensors(path.join(side, 'rotations.safetensors'), rotationsOut, { 'rlvr_lens.intervention': JSON.stringify(summary) });
    writeFileAtomic(path.join(side, 'intervention.json'), toJson(envelope('intervention', interventionRecord(result, summary))));
    commitFolder(tmp, outAbs);
    tmp = null;
    return result;
  } finally {
    src.close();
    if (tmp) try { fs.rmSync(tmp, { recursive: true, force: true }); } catch { /* best effort */ }
  }
}

/** The JSON body of intervention.json (deterministic: no paths of the machine, no times). */
function interventionRecord(r: InterventionResult, summary: object): object {
  return {
    base: r.base, model_type: r.modelType, layout: r.layout, ...summary,
    files: r.files.map((f) => path.basename(f)), copied_files: r.copiedFiles, skipped_files: r.skippedFiles,
    verification_method: 'forward pass of each touched attention block (RMSNorm, q/k/v(+bias), q_norm/k_norm, RoPE, causal GQA softmax attention, o_proj) in fp64 on x ~ N(0,1) [tokens, hidden], positions 0..tokens-1; original weights vs the weights as stored (and, for rotations, vs the unrounded fp64 result)',
    layers: r.layers.map((l) => ({
      layer: l.layer, rotated: l.rotated, permutation: l.permutation, query_permutation: l.queryPermutation,
      tensors_changed: l.tensorsChanged, rotation_orthogonality_error: l.rotationOrthogonalityError,
      verification: l.verification,
    })),
  };
}

function permuteFloat64Rows(a: Float64Array, perm: readonly number[], block: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let h = 0; h < perm.length; h++) out.set(a.subarray(h * block, (h + 1) * block), perm[h]! * block);
  return out;
}

function permuteFloat64Cols(a: Float64Array, perm: readonly number[], rows: number, block: number): Float64Array {
  const out = new Float64Array(a.length);
  const rowLen = perm.length * block;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < perm.length; h++) out.set(a.subarray(r * rowLen + h * block, r * rowLen + (h + 1) * block), r * rowLen + perm[h]! * block);
  }
  return out;
}
