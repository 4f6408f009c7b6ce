/**
 * `buildMasks(...)`: sparse-RL training masks from a base model alone (SPEC §4, paper §5.1,
 * Table 4), one per 2-D linear weight (`isLinearWeight`), written as a safetensors file of
 * BOOL tensors under each weight's own name, 1 = trainable.
 *
 * Kinds (α = fraction, k = rank; defaults α = 0.5, k = 64, k capped at the matrix rank):
 * - `princ`:    M_princ = Top_α(|W0^(k)|), the principal weights (largest entries of the
 *               rank-k reconstruction), exactly floor(α·n) entries per matrix;
 * - `nonprinc`: ¬M_princ (the complement, n − floor(α·n) entries);
 * - `low`:      M_low = Bottom_α(|W0|), the low-magnitude weights;
 * - `safe`:     M_low ∪ ¬M_princ (the paper's "safe" mask, ~70% of the entries at α = 0.5);
 * - `random-like-safe`: per tensor, a uniformly random mask with exactly as many entries as
 *               that tensor's safe mask (seeded: `new Rng(moduleSeed(seed, name))`, partial
 *               Fisher–Yates), the paper's control (v).
 * M_princ and M_low are computed by src/probes/principal.ts (`principalMask`,
 * `lowMagnitudeMask`: exactly floor(α·n) entries, ties broken by flat index, so masks are
 * deterministic), reusing cached base decompositions (`defaultMaskScorers`).
 *
 * Tensors not in the mask file (embeddings, lm_head, norms, biases) are not restricted by
 * it; the result reports the trainable fraction over the masked weights and over all
 * parameters assuming the unmasked tensors train densely.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlvrError, UsageError, fromSystemError } from '../errors.js';
import { decodeToFloat32 } from '../io/dtype.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { type TensorToWrite, writeSafetensors } from '../io/writer.js';
import { type LayerSelection, parseLayerList } from '../interventions/intervene.js';
import { type ModuleKind, compareTensorNames, isLinearWeight, parseTensorName } from '../model/names.js';
import { linalgBackend } from '../linalg/index.js';
import { BitMask } from '../probes/mask.js';
import { effectiveK, lowMagnitudeMask, principalMask } from '../probes/principal.js';
import { DecompositionCache, defaultCacheDir } from '../run/cache.js';
import { DEFAULT_SOLVER, baseDecompositionKey } from '../run/geometry.js';
import { Rng } from '../util/random.js';
import { VERSION } from '../version.js';
import { type RawTensor, moduleSeed } from './peft.js';

export type MaskKind = 'princ' | 'nonprinc' | 'low' | 'safe' | 'random-like-safe';
export const MASK_KINDS: readonly MaskKind[] = ['princ', 'nonprinc', 'low', 'safe', 'random-like-safe'];

/** Computes M_princ and M_low for one weight [rows, cols] (row-major fp32). */
export interface MaskScorers {
  principal(name: string, w: Float32Array, rows: number, cols: number, alpha: number, rank: number, raw?: RawTensor): Promise<BitMask> | BitMask;
  low(name: string, w: Float32Array, rows: number, cols: number, alpha: number): Promise<BitMask> | BitMask;
}

/**
 * The library's M_princ / M_low (src/probes/principal.ts). M_princ's top-k factors are read
 * from the base-decomposition cache (src/run/cache.ts) when `rlvr-lens analyze/principal`
 * already decomposed this weight with the default solver settings and the same thread
 * count (identical factors, so identical masks); otherwise they are computed with the same
 * `topKSVD` defaults. The cache is only read here, never written: its entries also carry
 * data (σ_{k+1}, warm-start basis) that only the geometry run produces.
 */
export function defaultMaskScorers(o: { cacheDir?: string | null; threads?: number } = {}): MaskScorers {
  const threads = o.threads ?? 1;
  const cache = new DecompositionCache(o.cacheDir === undefined ? defaultCacheDir() : o.cacheDir);
  let backend: string | null = null;
  return {
    async principal(name, w, rows, cols, alpha, rank, raw) {
      const W0 = { rows, cols, data: w };
      if (raw && cache.dir !== null) {
        backend ??= await linalgBackend();
        const k = effectiveK(rank, rows, cols);
        // The key the geometry pass (analyze / principal with default solver settings) wrote.
        const dec = cache.get(baseDecompositionKey(name, raw.bytes, raw.dtype, [rows, cols], k, false, { ...DEFAULT_SOLVER, backend, threads }));
        if (dec) return principalMask(W0, k, alpha, { svd: dec, threads });
      }
      return principalMask(W0, rank, alpha, { threads });
    },
    low: (_name, w, rows, cols, alpha) => lowMagnitudeMask({ rows, cols, data: w }, alpha),
  };
}

export interface MaskOptions {
  base: string;
  /** Output .safetensors file. */
  out: string;
  kind: MaskKind;
  alpha?: number;
  rank?: number;
  seed?: number;
  /** Only these decoder layers (others are left out of the file). */
  layers?: LayerSelection;
  /** Only these module kinds (q, k, v, o, gate, up, down, expert, router). */
  modules?: readonly ModuleKind[];
  force?: boolean;
  /** How M_princ / M_low are computed (default: `defaultMaskScorers`). */
  scorers?: MaskScorers;
  /** Decomposition cache folder for the default scorers (null: none; default: `defaultCacheDir()`). */
  cacheDir?: string | null;
  /** GEMM threads for the default scorers. */
  threads?: number;
  onTensor?: (name: string, done: number, total: number) => void;
}

export interface MaskTensorReport {
  name: string;
  layer: number | null;
  module: ModuleKind;
  shape: [number, number];
  /** The rank used for M_princ here: min(rank, rows, cols); null for `low`. */
  k: number | null;
  trainable: number;
  total: number;
  fraction: number;
}

export interface MaskResult {
  out: string;
  kind: MaskKind;
  alpha: number;
  rank: number;
  seed: number;
  tensors: MaskTensorReport[];
  /** Σ trainable / Σ entries over the masked weights (Table 4's #params column). */
  trainable: number;
  total: number;
  fraction: number;
  /** All parameters of the checkpoint, and the trainable share if unmasked tensors train densely. */
  modelParams: number;
  fractionOfModel: number;
  /** Per module kind: trainable / total. */
  byModule: Record<string, { trainable: number; total: number; fraction: number }>;
}

/** A uniformly random mask with exactly `count` set entries (partial Fisher–Yates). */
export function randomMaskWithCount(shape: readonly number[], count: number, rng: Rng): BitMask {
  const m = new BitMask(shape);
  const n = m.length;
  if (!Number.isInteger(count) || count < 0 || count > n) throw new RangeError(`randomMaskWithCount: ${count} of ${n}`);
  // Choose the smaller of the set and its complement, so the work is ≤ n/2 swaps.
  const pick = Math.min(count, n - count);
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = 0; i < pick; i++) {
    const j = i + rng.int(n - i);
    const t = idx[i]!; idx[i] = idx[j]!; idx[j] = t;
    m.set(idx[i]!);
  }
  return pick === count ? m : m.not();
}

/** The mask of `kind` from M_princ and M_low (random-like-safe needs the rng). */
export function combineMasks(kind: MaskKind, princ: BitMask | null, low: BitMask | null, rng?: Rng): BitMask {
  switch (kind) {
    case 'princ': return princ!;
    case 'nonprinc': return princ!.not();
    case 'low': return low!;
    case 'safe': return low!.or(princ!.not());
    case 'random-like-safe': {
      const safe = low!.or(princ!.not());
      return randomMaskWithCount(safe.shape, safe.count(), rng!);
    }
  }
}

/** See the module header. Throws RlvrError on bad input; nothing is written then. */
export async function buildMasks(opts: MaskOptions, scorers: MaskScorers | undefined = opts.scorers): Promise<MaskResult> {
  if (!MASK_KINDS.includes(opts.kind)) throw new UsageError(`--kind must be one of ${MASK_KINDS.join(', ')}, not ${JSON.stringify(opts.kind)}`);
  const alpha = opts.alpha ?? 0.5;
  if (!(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha must be in [0, 1], not ${alpha}`);
  const rank = opts.rank ?? 64;
  if (!Number.isInteger(rank) || rank < 1) throw new UsageError(`--rank must be a positive integer, not ${rank}`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UsageError(`--seed must be an integer in 0..4294967295, not ${seed}`);
  const sc = scorers ?? defaultMaskScorers({ ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}), ...(opts.threads !== undefined ? { threads: opts.threads } : {}) });
  const out = path.resolve(opts.out);
  if (fs.existsSync(out) && !opts.force) throw new RlvrError('output file already exists (use --force to replace it)', { file: opts.out, code: 'E_EXISTS' });
  if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new RlvrError('output path is a folder; give a .safetensors file name', { file: opts.out, code: 'E_EXISTS' });
  if (!fs.existsSync(path.dirname(out))) throw new RlvrError('parent folder does not exist', { file: path.dirname(out), code: 'ENOENT' });

  const src = openCheckpoint(opts.base);
  let spill: MaskSpill | null = null;
  try {
    if (src.files.some((f) => path.resolve(f) === out)) throw new UsageError(`${opts.out}: the output would overwrite an input file`);
    let layers: number[] | null = null;
    if (opts.layers !== undefined) {
      const nl = src.config?.numLayers;
      if (typeof opts.layers === 'string') {
        if (nl === undefined) throw new UsageError('--layers needs num_hidden_layers in config.json');
        layers = parseLayerList(opts.layers, nl, '--layers');
      } else layers = [...opts.layers];
    }
    const names = src.names.filter((n) => {
      const p = parseTensorName(n);
      if (!isLinearWeight(p, src.info(n).shape)) return false;
      if (layers && (p.layer === null || !layers.includes(p.layer))) return false;
      if (opts.modules && !opts.modules.includes(p.kind)) return false;
      return true;
    }).sort(compareTensorNames);
    if (names.length === 0) throw new UsageError(`${opts.base}: no 2-D linear weights${layers || opts.modules ? ' in the chosen layers/modules' : ''}`);

    // Each mask goes to a spill file (its bitset words, 1/8 byte per entry) as soon as it is
    // built, so memory holds one tensor's mask, not all of them (~9 GB of bitsets for 70B);
    // the output is written from the spill once the totals for its header are known.
    spill = new MaskSpill(out);
    const parked = spill;
    const reports: MaskTensorReport[] = [];
    let done = 0;
    for (const name of names) {
      const [rows, cols] = src.info(name).shape as [number, number];
      const needPrinc = opts.kind !== 'low';
      const needLow = opts.kind === 'low' || opts.kind === 'safe' || opts.kind === 'random-like-safe';
      const bytes = src.readBytes(name);
      const w = decodeToFloat32(bytes, src.info(name).dtype);
      const k = Math.min(rank, rows, cols);
      const princ = needPrinc ? await sc.principal(name, w, rows, cols, alpha, k, { dtype: src.info(name).dtype, bytes }) : null;
      const low = needLow ? await sc.low(name, w, rows, cols, alpha) : null;
      const mask = combineMasks(opts.kind, princ, low, opts.kind === 'random-like-safe' ? new Rng(moduleSeed(seed, name)) : undefined);
      parked.put(name, mask);
      const p = parseTensorName(name);
      const trainable = mask.count();
      reports.push({ name, layer: p.layer, module: p.kind, shape: [rows, cols], k: needPrinc ? k : null, trainable, total: mask.length, fraction: trainable / mask.length });
      opts.onTensor?.(name, ++done, names.length);
    }
    const trainable = reports.reduce((a, r) => a + r.trainable, 0);
    const total = reports.reduce((a, r) => a + r.total, 0);
    const modelParams = src.names.reduce((a, n) => a + src.info(n).numel, 0);
    const byModule: MaskResult['byModule'] = {};
    for (const r of reports) {
      const b = (byModule[r.module] ??= { trainable: 0, total: 0, fraction: 0 });
      b.trainable += r.trainable; b.total += r.total; b.fraction = b.trainable / b.total;
    }
    const result: MaskResult = {
      out, kind: opts.kind, alpha, rank, seed, tensors: reports, trainable, total, fraction: trainable / total,
      modelParams, fractionOfModel: (modelParams - total + trainable) / modelParams, byModule,
    };
    const tensors: TensorToWrite[] = names.map((name) => ({ name, dtype: 'BOOL', shape: parked.shape(name), data: () => parked.get(name).toBytes() }));
    writeSafetensors(out, tensors, {
      format: 'pt',
      'rlvr_lens.masks': JSON.stringify({
        tool: 'rlvr-lens', version: VERSION, kind: opts.kind, alpha, rank, seed: opts.kind === 'random-like-safe' ? seed : null,
        meaning: '1 = trainable', trainable_fraction: result.fraction,
      }),
    });
    return result;
  } finally {
    spill?.close();
    src.close();
  }
}

/** Masks parked on disk next to the output (a hidden temp file, removed on close). */
class MaskSpill {
  private readonly file: string;
  private fd: number | null;
  private offset = 0;
  private readonly where = new Map<string, { offset: number; shape: number[] }>();

  constructor(private readonly out: string) {
    this.file = path.join(path.dirname(out), `.${path.basename(out)}.masks-${process.pid}.tmp`);
    try { this.fd = fs.openSync(this.file, 'w+'); } catch (e) { throw fromSystemError(e, out, 'write'); }
  }

  put(name: string, m: BitMask): void {
    const b = new Uint8Array(m.words.buffer, m.words.byteOffset, m.words.byteLength);
    try {
      for (let done = 0; done < b.byteLength;) done += fs.writeSync(this.fd!, b, done, b.byteLength - done, this.offset + done);
    } catch (e) { throw fromSystemError(e, this.out, 'write'); }
    this.where.set(name, { offset: this.offset, shape: [...m.shape] });
    this.offset += b.byteLength;
  }

  shape(name: string): number[] { return this.where.get(name)!.shape; }

  get(name: string): BitMask {
    const w = this.where.get(name)!;
    const m = new BitMask(w.shape);
    const b = new Uint8Array(m.words.buffer, m.words.byteOffset, m.words.byteLength);
    for (let done = 0; done < b.byteLength;) {
      const n = fs.readSync(this.fd!, b, done, b.byteLength - done, w.offset + done);
      if (n === 0) throw new RlvrError('mask spill file ended early', { file: this.file, code: 'E_SPILL' });
      done += n;
    }
    return m;
  }

  close(): void {
    if (this.fd !== null) { try { fs.closeSync(this.fd); } catch { /* ignore */ } this.fd = null; }
    try { fs.rmSync(this.file, { force: true }); } catch { /* nothing to clean up */ }
  }
}
