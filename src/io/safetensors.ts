/**
 * Safetensors reader. The header is validated completely before any tensor byte is read,
 * following the reference implementation's rules (huggingface/safetensors `Metadata::validate`):
 * every way a file can be wrong is a named error code (see SAFETENSORS_ERRORS).
 *
 * Layout: 8-byte little-endian u64 header length N, N bytes of UTF-8 JSON, then the data
 * buffer. Offsets in the JSON are relative to the start of the data buffer.
 */
import * as fs from 'node:fs';
import { FormatError, fromSystemError } from '../errors.js';
import { type DType, ITEMSIZE, isDType } from './dtype.js';
import { printable } from './printable.js';

/** Largest header the reader accepts (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Every way a safetensors file can be rejected, by code. The code is what tests, scripts
 * and `FormatError.code` use; the text is the start of the line the user sees.
 */
export const SAFETENSORS_ERRORS = {
  E_TOO_SMALL: 'file is shorter than the 8-byte header length',
  E_HEADER_TOO_LARGE: 'header length exceeds the 100 MB limit',
  E_HEADER_PAST_END: 'header length points past the end of the file',
  E_HEADER_UTF8: 'header is not valid UTF-8',
  E_HEADER_JSON: 'header is not valid JSON',
  E_HEADER_NOT_OBJECT: 'header is not a JSON object',
  E_DUPLICATE_NAME: 'duplicate tensor name',
  E_DUPLICATE_KEY: 'duplicate key inside a tensor entry or __metadata__',
  E_METADATA: '__metadata__ is not a string-to-string map',
  E_TENSOR_ENTRY: 'tensor entry is malformed',
  E_UNKNOWN_DTYPE: 'unknown dtype',
  E_BAD_SHAPE: 'shape is not a list of non-negative integers',
  E_BAD_OFFSETS: 'data_offsets are not two non-negative integers begin <= end',
  E_SIZE_OVERFLOW: 'tensor byte size overflows',
  E_SIZE_MISMATCH: 'byte length does not match shape and dtype',
  E_OFFSETS_GAP: 'data_offsets leave a gap or overlap',
  E_TRAILING_BYTES: 'data does not end exactly at the end of the file',
  E_TRUNCATED: 'file ended before the tensor data',
  E_NOT_FILE: 'not a regular file',
} as const;
export type SafetensorsErrorCode = keyof typeof SAFETENSORS_ERRORS;

/**
 * Dtypes the reference implementation knows but rlvr-lens does not decode (sub-byte MX
 * formats, FNUZ fp8 variants, E8M0 scales, complex). Named in the error so the user learns
 * the file is valid safetensors, just unsupported here.
 */
export const UNSUPPORTED_REFERENCE_DTYPES: readonly string[] = [
  'F4', 'F6_E2M3', 'F6_E3M2', 'F8_E8M0', 'F8_E4M3FNUZ', 'F8_E5M2FNUZ', 'C64',
];

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly numel: number;
  /** Absolute byte offset of the tensor's first byte in the file. */
  readonly fileOffset: number;
  /** Byte length of the tensor. */
  readonly byteLength: number;
}

function fail(file: string, code: SafetensorsErrorCode, detail?: string): never {
  const base = SAFETENSORS_ERRORS[code];
  // The detail may quote the header (JSON parser messages do): keep it one clean line.
  throw new FormatError(file, code, detail ? `${base} (${printable(detail, 300)})` : base);
}

/** A name as it appears in messages: JSON-quoted and cut, so a hostile name stays one short line. */
function quote(s: string): string {
  const q = JSON.stringify(s);
  return q.length > 80 ? `${q.slice(0, 77)}..."` : q;
}

/**
 * Finds the first duplicate key in any object of a JSON text (JSON.parse silently keeps the
 * last; the format forbids duplicates, and serde rejects duplicate struct fields). Assumes
 * the text already parsed as JSON. Iterative, so deep nesting cannot overflow the stack.
 * Returns the duplicate and the depth of its object (1 = the header's top level).
 */
function findDuplicateKey(text: string): { key: string; depth: number } | null {
  // One frame per open container: a Set of keys for objects, null for arrays.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i++;
      let escaped = false;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) { escaped = true; i += 2; continue; }
        if (d === 0x22) break;
        i++;
      }
      i++;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        // Only keys with escapes need decoding; "\u0061" and "a" are the same key.
        const key = escaped ? (JSON.parse(text.slice(start, i)) as string) : text.slice(start + 1, i - 1);
        if (top.has(key)) return { key, depth: stack.length };
        top.add(key);
        expectKey = false;
      }
      continue;
    }
    if (c === 0x7b /* { */) { stack.push(new Set()); expectKey = true; }
    else if (c === 0x5b /* [ */) { stack.push(null); expectKey = false; }
    else if (c === 0x7d || c === 0x5d) { stack.pop(); expectKey = false; }
    else if (c === 0x2c /* , */) expectKey = stack[stack.length - 1] != null;
    i++;
  }
  return null;
}

/** True when a string holds an unpaired UTF-16 surrogate (only reachable through a `\uD800`
 * escape; serde_json rejects these, and they cannot be written back as UTF-8). */
function hasLoneSurrogate(s: string): boolean {
  return /[\uD800-\uDFFF]/u.test(s);
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

const U64_MAX = (1n << 64n) - 1n;

export interface ParsedHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  headerLength: number;
  dataStart: number;
}

/**
 * Checks the 8-byte header length `n` against the file size; returns it as a number.
 * Same order as the reference: the 100 MB cap first, then the end of the file.
 */
export function checkHeaderLength(file: string, n: bigint, fileSize: number): number {
  if (n > BigInt(MAX_HEADER_BYTES)) fail(file, 'E_HEADER_TOO_LARGE', `${n} bytes`);
  if (n > BigInt(fileSize - 8)) fail(file, 'E_HEADER_PAST_END', `header ${n} bytes, file ${fileSize} bytes`);
  return Number(n);
}

/**
 * Validates a header given the JSON bytes and the total file size. Pure: used by the file
 * reader and directly by the fuzz tests.
 *
 * Deliberate differences from the reference (huggingface/safetensors 0.5+, serde_json):
 * stricter where the format says so (duplicate keys at any depth are rejected; a UTF-8 BOM
 * is rejected as serde does), and lenient only where JavaScript cannot tell the difference
 * (`1.0` or `1e2` where an integer is expected are read as integers; shape entries or
 * offsets above 2^53 are rejected as E_BAD_SHAPE / E_BAD_OFFSETS since no such file can
 * exist on disk). Leading and trailing JSON whitespace is accepted, as the reference does.
 */
export function parseHeader(file: string, headerBytes: Uint8Array, fileSize: number): ParsedHeader {
  let text: string;
  try {
    // ignoreBOM keeps a leading U+FEFF in the text so JSON.parse rejects it, as serde does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail(file, 'E_HEADER_UTF8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(file, 'E_HEADER_JSON', (e as Error).message.slice(0, 120));
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail(file, 'E_HEADER_NOT_OBJECT');
  const dup = findDuplicateKey(text);
  if (dup) {
    if (dup.depth === 1) fail(file, 'E_DUPLICATE_NAME', quote(dup.key));
    fail(file, 'E_DUPLICATE_KEY', quote(dup.key));
  }
  const headerLength = headerBytes.byteLength;
  const dataStart = 8 + headerLength;
  const dataSize = fileSize - dataStart;
  const metaPairs: [string, string][] = [];
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number; numel: number }[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (hasLoneSurrogate(name)) fail(file, 'E_HEADER_JSON', `name ${quote(name)} has an unpaired surrogate escape`);
    if (name === '__metadata__') {
      if (raw === null) continue; // serde reads `null` as "no metadata" (Option::None)
      if (typeof raw !== 'object' || Array.isArray(raw)) fail(file, 'E_METADATA');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, 'E_METADATA', `key ${quote(k)}`);
        if (hasLoneSurrogate(k) || hasLoneSurrogate(v)) fail(file, 'E_HEADER_JSON', `metadata ${quote(k)} has an unpaired surrogate escape`);
        metaPairs.push([k, v]);
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(file, 'E_TENSOR_ENTRY', `${quote(name)} is not an object`);
    const r = raw as Record<string, unknown>;
    for (const field of ['dtype', 'shape', 'data_offsets']) {
      if (!Object.hasOwn(r, field)) fail(file, 'E_TENSOR_ENTRY', `${quote(name)} has no ${field}`);
    }
    if (!isDType(r.dtype)) {
      const known = typeof r.dtype === 'string' && UNSUPPORTED_REFERENCE_DTYPES.includes(r.dtype);
      const shown = typeof r.dtype === 'string' ? quote(r.dtype) : String(JSON.stringify(r.dtype)).slice(0, 40);
      fail(file, 'E_UNKNOWN_DTYPE', `${quote(name)}: ${shown}${known ? ' is a safetensors dtype rlvr-lens does not support' : ''}`);
    }
    const dtype = r.dtype;
    if (!Array.isArray(r.shape) || !r.shape.every(isNonNegInt)) fail(file, 'E_BAD_SHAPE', quote(name));
    const shape = r.shape as number[];
    const off = r.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !isNonNegInt(off[0]) || !isNonNegInt(off[1]) || off[0] > off[1]) {
      fail(file, 'E_BAD_OFFSETS', quote(name));
    }
    const [begin, end] = off as [number, number];
    // Same overflow rule as the reference (u64 running product, then bits), then the
    // JavaScript limit: byte counts must be exact doubles.
    let numel = 1n;
    for (const d of shape) {
      numel *= BigInt(d);
      if (numel > U64_MAX) fail(file, 'E_SIZE_OVERFLOW', `${quote(name)}: element count exceeds 2^64`);
    }
    const bytes = numel * BigInt(ITEMSIZE[dtype]);
    if (bytes * 8n > U64_MAX || bytes > BigInt(Number.MAX_SAFE_INTEGER)) fail(file, 'E_SIZE_OVERFLOW', `${quote(name)}: ${bytes} bytes`);
    if (Number(bytes) !== end - begin) {
      fail(file, 'E_SIZE_MISMATCH', `${quote(name)}: ${dtype}${JSON.stringify(shape)} needs ${bytes} bytes, offsets give ${end - begin}`);
    }
    entries.push({ name, dtype, shape, begin, end, numel: Number(numel) });
  }
  // The reference sorts by (begin, end) and requires each to begin where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) {
      fail(file, 'E_OFFSETS_GAP', `${quote(e.name)} begins at ${e.begin}, expected ${pos}${e.begin < pos ? ' (overlap)' : ' (gap)'}`);
    }
    pos = e.end;
  }
  if (pos > dataSize) fail(file, 'E_TRUNCATED', `data needs ${pos} bytes, file has ${Math.max(0, dataSize)}`);
  if (pos !== dataSize) fail(file, 'E_TRAILING_BYTES', `${dataSize - pos} extra bytes`);
  const tensors = new Map<string, TensorInfo>();
  for (const e of entries) {
    tensors.set(e.name, {
      name: e.name, dtype: e.dtype, shape: e.shape, numel: e.numel,
      fileOffset: dataStart + e.begin, byteLength: e.end - e.begin,
    });
  }
  // fromEntries defines own properties, so a key named "__proto__" is kept, not swallowed.
  const metadata = Object.fromEntries(metaPairs) as Record<string, string>;
  return { tensors, metadata, headerLength, dataStart };
}

/**
 * Validates a whole safetensors file held in memory (length prefix, header, data layout).
 * Same rules and errors as SafetensorsFile.open; tensor bytes are
 * `bytes.subarray(t.fileOffset, t.fileOffset + t.byteLength)`.
 */
export function parseSafetensorsBuffer(file: string, bytes: Uint8Array): ParsedHeader {
  if (bytes.byteLength < 8) fail(file, 'E_TOO_SMALL', `${bytes.byteLength} bytes`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  const len = checkHeaderLength(file, n, bytes.byteLength);
  return parseHeader(file, bytes.subarray(8, 8 + len), bytes.byteLength);
}

/** Reads exactly `length` bytes at `position` into `into` (looping over short reads). */
export function readExact(fd: number, file: string, into: Uint8Array, position: number, length = into.byteLength): void {
  let done = 0;
  while (done < length) {
    let n: number;
    try {
      n = fs.readSync(fd, into, done, length - done, position + done);
    } catch (e) {
      throw fromSystemError(e, file, 'read');
    }
    if (n === 0) fail(file, 'E_TRUNCATED', `short read at byte ${position + done}`);
    done += n;
  }
}

/** An open, validated safetensors file. Not thread-safe; each worker opens its own. */
export class SafetensorsFile {
  readonly path: string;
  readonly size: number;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly headerLength: number;
  readonly dataStart: number;
  private fd: number | null;

  private constructor(path: string, fd: number, size: number, h: ParsedHeader) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.tensors = h.tensors;
    this.metadata = h.metadata;
    this.headerLength = h.headerLength;
    this.dataStart = h.dataStart;
  }

  /** Opens and validates `path`; throws FormatError (one line, named code) on any defect. */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      // O_NONBLOCK so a FIFO (or another special file) cannot hang the open; it has no
      // effect on regular files, and anything that is not one is rejected below.
      fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
    } catch (e) {
      throw fromSystemError(e, path, 'open');
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw fromSystemError({ code: 'EISDIR' }, path, 'open');
      if (!st.isFile()) fail(path, 'E_NOT_FILE');
      const size = st.size;
      if (size < 8) fail(path, 'E_TOO_SMALL', `${size} bytes`);
      const lenBuf = new Uint8Array(8);
      readExact(fd, path, lenBuf, 0);
      const n = checkHeaderLength(path, new DataView(lenBuf.buffer).getBigUint64(0, true), size);
      const hb = new Uint8Array(n);
      readExact(fd, path, hb, 8);
      const h = parseHeader(path, hb, size);
      return new SafetensorsFile(path, fd, size, h);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
  }

  /** Parses only the header (no fd kept). */
  static inspect(path: string): SafetensorsFile {
    const f = SafetensorsFile.open(path);
    f.close();
    return f;
  }

  get(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new FormatError(this.path, 'E_MISSING_TENSOR', `no tensor named ${JSON.stringify(name)}`);
    return t;
  }

  private handle(): number {
    if (this.fd === null) {
      try {
        this.fd = fs.openSync(this.path, 'r');
      } catch (e) {
        throw fromSystemError(e, this.path, 'open');
      }
    }
    return this.fd;
  }

  /**
   * Reads `length` bytes of tensor `name` starting `byteOffset` bytes into the tensor, into
   * `into` (allocated when omitted). Works for files over 4 GB.
   */
  readBytes(name: string, byteOffset = 0, length?: number, into?: Uint8Array): Uint8Array {
    const t = this.get(name);
    const len = length ?? t.byteLength - byteOffset;
    if (!Number.isSafeInteger(byteOffset) || !Number.isSafeInteger(len) || byteOffset < 0 || len < 0 || byteOffset + len > t.byteLength) {
      throw new FormatError(this.path, 'E_RANGE', `read of ${quote(name)} [${byteOffset}, ${byteOffset + len}) outside ${t.byteLength} bytes`);
    }
    if (into && into.byteLength < len) {
      throw new FormatError(this.path, 'E_RANGE', `read of ${len} bytes of ${quote(name)} into a ${into.byteLength}-byte buffer`);
    }
    // Allocate 8-byte aligned so typed views (Float64Array, BigInt64Array) can alias it.
    const out = into ?? new Uint8Array(new ArrayBuffer(len));
    readExact(this.handle(), this.path, out, t.fileOffset + byteOffset, len);
    return out.byteLength === len ? out : out.subarray(0, len);
  }

  close(): void {
    if (this.fd !== null) {
      try { fs.closeSync(this.fd); } catch { /* already closed */ }
      this.fd = null;
    }
  }
}
