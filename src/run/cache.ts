/**
 * On-disk cache of base-weight decompositions (top-k factors + the warm-start basis), so a
 * base model is decomposed once and reused for every tuned checkpoint and every later call.
 *
 * Key: SHA-256 of the tensor's raw bytes (content, not path or mtime: copies and fresh
 * downloads of the same weights hit), the tensor name, its dtype and shape, k, the method
 * and every solver setting that changes the result (seed, oversample, tolerances, exact
 * or randomized). The file name is the SHA-256 of the canonical key; the full key is stored
 * inside and compared on read, so a file-name collision can never return a wrong entry.
 *
 * Location: `$RLVR_CACHE`, else `$XDG_CACHE_HOME/rlvr-lens`, else `~/.cache/rlvr-lens`
 * (entries under `svd/`). `--no-cache` disables it (`new DecompositionCache(null)`).
 *
 * File: "RLVRSVD1", u32 LE header length, u32 0, the JSON header (space-padded to 8 bytes),
 * then fp64 payload: U (m×k), S (k), V (n×k), the warm-start basis (if any). The header
 * records the payload's SHA-256. Writes are atomic (temp file + rename), so concurrent
 * shards writing the same entry are safe. A truncated, corrupt or mismatching entry is
 * ignored (`get` returns null) and the caller's `put` rewrites it; cache I/O failures never
 * fail an analysis (a read-only cache location just means no caching).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/writer.js';
import type { Mat64 } from '../linalg/index.js';

const MAGIC = 'RLVRSVD1';

export interface DecompositionInfo {
  iterations: number;
  /** Relative residual at return (0 for exact). */
  residual: number;
  /** Degrees; 0 for exact. */
  angleErrorBound: number;
  converged: boolean;
  method: string;
}

/** Top-k factors of one base weight, as stored. */
export interface Decomposition {
  U: Mat64;
  S: Float64Array;
  V: Mat64;
  /** The iterated side's full Ritz basis (`TopKSVD.warmStartBasis`), for warm starts. */
  basis: { side: 'U' | 'V'; M: Mat64 } | null;
  /** σ_{k+1} estimate (null when k = rank). */
  sigmaNext: number | null;
  info: DecompositionInfo;
}

export interface CacheKey {
  tensorSha256: string;
  name: string;
  dtype: string;
  shape: readonly number[];
  k: number;
  method: string;
  settings: Record<string, number | string | boolean>;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The default cache folder (see header). */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RLVR_CACHE) return path.resolve(env.RLVR_CACHE);
  if (env.XDG_CACHE_HOME) return path.join(env.XDG_CACHE_HOME, 'rlvr-lens');
  return path.join(os.homedir(), '.cache', 'rlvr-lens');
}

function canonicalKey(k: CacheKey): string {
  const settings = Object.fromEntries(Object.entries(k.settings).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify({ tensorSha256: k.tensorSha256, name: k.name, dtype: k.dtype, shape: [...k.shape], k: k.k, method: k.method, settings });
}

export interface CacheStats { hits: number; misses: number; writes: number; corrupt: number; writeErrors: number }

export class DecompositionCache {
  /** null: caching disabled. */
  readonly dir: string | null;
  readonly stats: CacheStats = { hits: 0, misses: 0, writes: 0, corrupt: 0, writeErrors: 0 };

  constructor(dir: string | null) {
    this.dir = dir === null ? null : path.join(dir, 'svd');
  }

  fileFor(key: CacheKey): string | null {
    if (this.dir === null) return null;
    const h = createHash('sha256').update(canonicalKey(key)).digest('hex');
    return path.join(this.dir, h.slice(0, 2), `${h}.bin`);
  }

  get(key: CacheKey): Decomposition | null {
    const file = this.fileFor(key);
    if (file === null) return null;
    let buf: Buffer;
    try { buf = fs.readFileSync(file); } catch { this.stats.misses++; return null; }
    const d = decode(buf, canonicalKey(key));
    if (d === null) { this.stats.corrupt++; this.stats.misses++; return null; }
    this.stats.hits++;
    // mark the entry used (mtime), so `pruneCache` drops the least recently used first
    try { const now = new Date(); fs.utimesSync(file, now, now); } catch { /* read-only cache: fine */ }
    return d;
  }

  put(key: CacheKey, d: Decomposition): void {
    const file = this.fileFor(key);
    if (file === null) return;
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeFileAtomic(file, encode(d, canonicalKey(key)));
      this.stats.writes++;
    } catch {
      this.stats.writeErrors++; // a read-only or full cache location must not fail the analysis
    }
  }
}

interface Header {
  key: string;
  m: number; n: number; k: number;
  basis: { side: 'U' | 'V'; rows: number; cols: number } | null;
  sigmaNext: number | null;
  info: DecompositionInfo;
  payloadBytes: number;
  payloadSha256: string;
}

function encode(d: Decomposition, key: string): Uint8Array {
  const k = d.S.length;
  const parts = [d.U.data, d.S, d.V.data, ...(d.basis ? [d.basis.M.data] : [])];
  const payloadBytes = parts.reduce((a, p) => a + p.byteLength, 0);
  const payload = new Uint8Array(payloadBytes);
  let off = 0;
  for (const p of parts) { payload.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), off); off += p.byteLength; }
  const header: Header = {
    key, m: d.U.rows, n: d.V.rows, k,
    basis: d.basis ? { side: d.basis.side, rows: d.basis.M.rows, cols: d.basis.M.cols } : null,
    sigmaNext: d.sigmaNext, info: d.info, payloadBytes, payloadSha256: sha256(payload),
  };
  let json = JSON.stringify(header);
  while ((16 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const hb = Buffer.from(json, 'utf8');
  const out = new Uint8Array(16 + hb.length + payloadBytes);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  new DataView(out.buffer).setUint32(8, hb.length, true);
  out.set(hb, 16);
  out.set(payload, 16 + hb.length);
  return out;
}

function decode(buf: Buffer, key: string): Decomposition | null {
  try {
    if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) return null;
    const hl = buf.readUInt32LE(8);
    if (16 + hl > buf.length) return null;
    const h = JSON.parse(buf.toString('utf8', 16, 16 + hl)) as Header;
    if (h.key !== key) return null;
    const start = 16 + hl;
    if (buf.length - start !== h.payloadBytes) return null;
    const payload = new Uint8Array(buf.buffer, buf.byteOffset + start, h.payloadBytes);
    if (sha256(payload) !== h.payloadSha256) return null;
    const f64 = new Float64Array(h.payloadBytes / 8);
    new Uint8Array(f64.buffer).set(payload);
    let o = 0;
    const take = (n: number): Float64Array => { const a = f64.subarray(o, o + n); o += n; return a; };
    const U = { rows: h.m, cols: h.k, data: take(h.m * h.k) };
    const S = take(h.k);
    const V = { rows: h.n, cols: h.k, data: take(h.n * h.k) };
    const basis = h.basis ? { side: h.basis.side, M: { rows: h.basis.rows, cols: h.basis.cols, data: take(h.basis.rows * h.basis.cols) } } : null;
    if (o !== f64.length) return null;
    return { U, S, V, basis, sigmaNext: h.sigmaNext, info: h.info };
  } catch {
    return null;
  }
}
