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

/** Largest header the reader accepts (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

export const SAFETENSORS_ERRORS = {
  E_TOO_SMALL: 'file is shorter than the 8-byte header length',
  E_HEADER_TOO_LARGE: 'header length exceeds the 100 MB limit',
  E_HEADER_PAST_END: 'header length points past the end of the file',
  E_HEADER_UTF8: 'header is not valid UTF-8',
  E_HEADER_JSON: 'header is not valid JSON',
  E_HEADER_NOT_OBJECT: 'header is not a JSON object',
  E_DUPLICATE_NAME: 'duplicate tensor name',
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
} as const;
export type SafetensorsErrorCode = keyof typeof SAFETENSORS_ERRORS;

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
  throw new FormatError(file, code, detail ? `${base} (${detail})` : base);
}

/** Names of the top-level keys of a JSON object text, in order, to detect duplicates
 * (JSON.parse silently keeps the last). Assumes the text already parsed as JSON. */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let i = 0;
  const n = text.length;
  let expectKey = false;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) { i += 2; continue; }
        if (d === 0x22) break;
        i++;
      }
      i++;
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(text.slice(start, i)) as string);
        expectKey = false;
      }
      continue;
    }
    if (c === 0x7b || c === 0x5b) { depth++; if (depth === 1 && c === 0x7b) expectKey = true; }
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c && depth === 1) expectKey = true;
    i++;
  }
  return keys;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export interface ParsedHeader {
  tensors: Map<string, TensorInfo>;
  metadata: Record<string, string>;
  headerLength: number;
  dataStart: number;
}

/**
 * Validates a header given the JSON bytes and the total file size. Pure: used by the file
 * reader and directly by the fuzz tests.
 */
export function parseHeader(file: string, headerBytes: Uint8Array, fileSize: number): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
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
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) fail(file, 'E_DUPLICATE_NAME', JSON.stringify(k));
    seen.add(k);
  }
  const headerLength = headerBytes.byteLength;
  const dataStart = 8 + headerLength;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number; numel: number }[] = [];
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(file, 'E_METADATA');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, 'E_METADATA', `key ${JSON.stringify(k)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(file, 'E_TENSOR_ENTRY', name);
    const r = raw as Record<string, unknown>;
    if (!isDType(r.dtype)) fail(file, 'E_UNKNOWN_DTYPE', `${name}: ${JSON.stringify(r.dtype)}`);
    const dtype = r.dtype;
    if (!Array.isArray(r.shape) || !r.shape.every(isNonNegInt)) fail(file, 'E_BAD_SHAPE', name);
    const shape = r.shape as number[];
    const off = r.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !isNonNegInt(off[0]) || !isNonNegInt(off[1]) || off[0] > off[1]) {
      fail(file, 'E_BAD_OFFSETS', name);
    }
    const [begin, end] = off as [number, number];
    let numel = 1n;
    for (const d of shape) numel *= BigInt(d);
    const bytes = numel * BigInt(ITEMSIZE[dtype]);
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) fail(file, 'E_SIZE_OVERFLOW', name);
    if (Number(bytes) !== end - begin) {
      fail(file, 'E_SIZE_MISMATCH', `${name}: ${dtype}${JSON.stringify(shape)} needs ${bytes} bytes, offsets give ${end - begin}`);
    }
    entries.push({ name, dtype, shape, begin, end, numel: Number(numel) });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const e of entries) {
    if (e.begin !== pos) fail(file, 'E_OFFSETS_GAP', `${e.name} begins at ${e.begin}, expected ${pos}`);
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
  return { tensors, metadata, headerLength, dataStart };
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
      fd = fs.openSync(path, 'r');
    } catch (e) {
      throw fromSystemError(e, path, 'open');
    }
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw fromSystemError({ code: 'EISDIR' }, path, 'open');
      const size = st.size;
      if (size < 8) fail(path, 'E_TOO_SMALL', `${size} bytes`);
      const lenBuf = new Uint8Array(8);
      readExact(fd, path, lenBuf, 0);
      const n = new DataView(lenBuf.buffer).getBigUint64(0, true);
      if (n > BigInt(MAX_HEADER_BYTES)) fail(path, 'E_HEADER_TOO_LARGE', `${n} bytes`);
      if (n > BigInt(size - 8)) fail(path, 'E_HEADER_PAST_END', `header ${n} bytes, file ${size} bytes`);
      const hb = new Uint8Array(Number(n));
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
    if (byteOffset < 0 || len < 0 || byteOffset + len > t.byteLength) {
      throw new FormatError(this.path, 'E_RANGE', `read of ${name} [${byteOffset}, ${byteOffset + len}) outside ${t.byteLength} bytes`);
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
