/**
 * Atomic writes: everything goes to a temp file in the destination folder, is fsynced, and
 * renamed over the final name, so a crash or a full disk never leaves a partial output.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlvrError, fromSystemError } from '../errors.js';
import { type DType, ITEMSIZE } from './dtype.js';
import { MAX_HEADER_BYTES } from './safetensors.js';

let tmpCounter = 0;

/** System errors (they carry `syscall`) become one readable line; our own errors and
 * programming errors pass through unchanged, so a bug is reported as a bug. */
function asWriteError(e: unknown, dest: string): unknown {
  if (e instanceof RlvrError) return e.file !== undefined ? e : new RlvrError(e.message, { file: dest, code: e.code, exitCode: e.exitCode });
  if (typeof (e as NodeJS.ErrnoException | null)?.syscall === 'string') return fromSystemError(e, dest, 'write');
  return e;
}

function removeQuietly(p: string): void {
  try { fs.rmSync(p, { force: true }); } catch { /* nothing to clean up */ }
}
function tmpName(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${tmpCounter++}`);
}

/** Creates `dir` (and parents); a readable error when that is impossible. */
export function ensureDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    throw fromSystemError(e, dir, 'write to output folder');
  }
}

/**
 * Runs `write(put)` against a temp file next to `dest`, then fsyncs and renames it over
 * `dest`. On any failure the temp file is removed and `dest` is untouched.
 */
function writeAtomically(dest: string, write: (put: (b: Uint8Array) => void) => void): void {
  const tmp = tmpName(dest);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, 'w');
    const out = fd;
    write((b) => {
      let off = 0;
      while (off < b.byteLength) off += fs.writeSync(out, b, off, b.byteLength - off);
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    fs.renameSync(tmp, dest);
  } catch (e) {
    if (fd !== null) try { fs.closeSync(fd); } catch { /* ignore */ }
    removeQuietly(tmp);
    throw asWriteError(e, dest);
  }
}

/** Writes `data` to `dest` atomically (temp file + fsync + rename). */
export function writeFileAtomic(dest: string, data: string | Uint8Array): void {
  writeAtomically(dest, (put) => put(typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
}

/** A tensor to write: either its bytes, or a producer that fills them chunk by chunk. */
export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** The raw little-endian bytes; or a function returning them when needed (streaming). */
  data: Uint8Array | (() => Uint8Array);
}

function byteLength(t: TensorToWrite): number {
  return t.shape.reduce((a, b) => a * b, 1) * ITEMSIZE[t.dtype];
}

/** The header bytes (length prefix + JSON, space-padded so the data starts 8-byte aligned).
 * Throws for what would make an invalid file: duplicate names, a tensor named
 * `__metadata__`, bad shapes, a header over the 100 MB limit. */
export function safetensorsHeader(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.hasOwn(header, t.name)) {
      throw new RlvrError(`cannot write tensor ${JSON.stringify(t.name)}: ${t.name === '__metadata__' ? 'reserved name' : 'duplicate name'}`, { code: 'E_WRITE_NAME' });
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new RlvrError(`cannot write tensor ${JSON.stringify(t.name)}: bad shape ${JSON.stringify(t.shape)}`, { code: 'E_WRITE_SIZE' });
    }
    const n = byteLength(t);
    // defineProperty: a tensor named "__proto__" must become a key, not a prototype.
    Object.defineProperty(header, t.name, {
      value: { dtype: t.dtype, shape: [...t.shape], data_offsets: [off, off + n] },
      enumerable: true, writable: true, configurable: true,
    });
    off += n;
  }
  const raw = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad on the UTF-8 byte length (not the UTF-16 string length) so non-ASCII names align too.
  const pad = (8 - ((raw.byteLength + 8) % 8)) % 8;
  const len = raw.byteLength + pad;
  if (len > MAX_HEADER_BYTES) throw new RlvrError(`header of ${len} bytes exceeds the 100 MB limit`, { code: 'E_WRITE_SIZE' });
  const out = new Uint8Array(8 + len);
  new DataView(out.buffer).setBigUint64(0, BigInt(len), true);
  out.set(raw, 8);
  out.fill(0x20, 8 + raw.byteLength);
  return out;
}

/**
 * Writes a safetensors file atomically. Tensor bytes are produced one tensor at a time, so
 * peak memory is one tensor. Tensors are written in the given order.
 */
export function writeSafetensors(dest: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): void {
  writeAtomically(dest, (put) => {
    put(safetensorsHeader(tensors, metadata));
    for (const t of tensors) {
      const bytes = typeof t.data === 'function' ? t.data() : t.data;
      if (bytes.byteLength !== byteLength(t)) {
        throw new RlvrError(`tensor ${t.name}: ${bytes.byteLength} bytes given, ${t.dtype}${JSON.stringify(t.shape)} needs ${byteLength(t)}`, { file: dest, code: 'E_WRITE_SIZE' });
      }
      put(bytes);
    }
  });
}

/**
 * Writes tensors as a sharded checkpoint (`model-0000i-of-0000N.safetensors` + index) or a
 * single `model.safetensors` when `shardOf` is not given. `shardOf(name)` returns the
 * shard file name each tensor goes to (e.g. to reproduce an input's sharding).
 */
export function writeCheckpointFiles(
  dir: string,
  tensors: readonly TensorToWrite[],
  metadata: Record<string, string>,
  shardOf?: (name: string) => string,
): string[] {
  ensureDir(dir);
  if (!shardOf) {
    const dest = path.join(dir, 'model.safetensors');
    writeSafetensors(dest, tensors, metadata);
    return [dest];
  }
  const groups = new Map<string, TensorToWrite[]>();
  for (const t of tensors) {
    const f = shardOf(t.name);
    // Shard names are plain file names inside `dir`: never a path that leaves it.
    if (f !== path.basename(f) || f === '.' || f === '..' || !f.endsWith('.safetensors') || f === 'model.safetensors.index.json') {
      throw new RlvrError(`shard name ${JSON.stringify(f)} for ${JSON.stringify(t.name)} is not a plain .safetensors file name`, { file: dir, code: 'E_WRITE_NAME' });
    }
    if (!groups.has(f)) groups.set(f, []);
    groups.get(f)!.push(t);
  }
  const written: string[] = [];
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const [file, ts] of groups) {
    const dest = path.join(dir, file);
    writeSafetensors(dest, ts, metadata);
    written.push(dest);
    for (const t of ts) { weightMap[t.name] = file; total += byteLength(t); }
  }
  const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const index = path.join(dir, 'model.safetensors.index.json');
  writeFileAtomic(index, JSON.stringify({ metadata: { total_size: total }, weight_map: sorted }, null, 2) + '\n');
  written.push(index);
  return written;
}
