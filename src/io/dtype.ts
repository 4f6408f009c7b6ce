/**
 * Safetensors dtypes and the float codecs the probes need (bf16, f16, f8), written so the
 * hot paths are branch-free typed-array loops.
 */
export const DTYPES = [
  'BOOL', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64',
  'F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2',
] as const;
export type DType = (typeof DTYPES)[number];

export const ITEMSIZE: Readonly<Record<DType, number>> = {
  BOOL: 1, U8: 1, I8: 1, I16: 2, U16: 2, I32: 4, U32: 4, I64: 8, U64: 8,
  F16: 2, BF16: 2, F32: 4, F64: 8, F8_E4M3: 1, F8_E5M2: 1,
};

/** The bytes of a 16-bit tensor as u16 codes (a view; a copy only when the bytes are not 2-aligned). */
export function u16View(bytes: Uint8Array): Uint16Array {
  const src = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(src.buffer, src.byteOffset, src.byteLength >>> 1);
}

export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && (DTYPES as readonly string[]).includes(s);
}

export function isFloatDType(d: DType): boolean {
  return d === 'F16' || d === 'BF16' || d === 'F32' || d === 'F64' || d === 'F8_E4M3' || d === 'F8_E5M2';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bit pattern → number (exact). */
export function bf16ToNumber(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/**
 * number → bf16 bit pattern, rounding the float32 value to nearest, ties to even (as
 * PyTorch's `.to(torch.bfloat16)`). NaN maps to a quiet NaN keeping the sign; ±0 and ±Inf
 * are preserved. The input is first rounded to float32 (as a checkpoint's fp32 master is).
 */
export function numberToBf16(x: number): number {
  f32[0] = x;
  return f32BitsToBf16(u32[0]!);
}

/** float32 bit pattern → bf16 bit pattern, round to nearest even. */
export function f32BitsToBf16(bits: number): number {
  bits >>>= 0;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) {
    return ((bits >>> 16) | 0x0040) & 0xffff; // quiet NaN, sign kept
  }
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** Rounds every element of a Float32Array to bf16 in place (RNE) — what saving in bf16 does. */
export function roundToBf16InPlace(a: Float32Array): void {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < u.length; i++) {
    const b = u[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) { u[i] = (b | 0x00400000) & 0xffff0000; continue; }
    const lsb = (b >>> 16) & 1;
    u[i] = ((b + 0x7fff + lsb) >>> 16) << 16;
  }
}

/** Float32Array → bf16 bits (Uint16Array), RNE. */
export function f32ToBf16Array(a: Float32Array, out = new Uint16Array(a.length)): Uint16Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  for (let i = 0; i < u.length; i++) out[i] = f32BitsToBf16(u[i]!);
  return out;
}

/** f16 bit pattern → number (exact, subnormals included). */
export function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** F8_E4M3 (FN variant, as in PyTorch float8_e4m3fn: no Inf, S.1111.111 is NaN). */
export function f8e4m3ToNumber(b: number): number {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >>> 3) & 0xf;
  const m = b & 0x7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return s * m * 2 ** -9;
  return s * (1 + m / 8) * 2 ** (e - 7);
}

/** F8_E5M2 (IEEE-like: Inf and NaN exist). */
export function f8e5m2ToNumber(b: number): number {
  const s = b & 0x80 ? -1 : 1;
  const e = (b >>> 2) & 0x1f;
  const m = b & 0x3;
  if (e === 0) return s * m * 2 ** -16;
  if (e === 31) return m === 0 ? s * Infinity : NaN;
  return s * (1 + m / 4) * 2 ** (e - 15);
}

let f16Table: Float32Array | null = null;
function f16Lut(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = f16ToNumber(i);
  }
  return f16Table;
}

/**
 * Decodes raw little-endian tensor bytes to float32 (float64 inputs are rounded; use
 * decodeToFloat64 when that matters). Integer and bool dtypes decode to their values.
 */
export function decodeToFloat32(bytes: Uint8Array, dtype: DType, out?: Float32Array): Float32Array {
  const n = bytes.byteLength / ITEMSIZE[dtype];
  const o = out ?? new Float32Array(n);
  const aligned = bytes.byteOffset % 8 === 0;
  const src = aligned ? bytes : bytes.slice();
  const buf = src.buffer, off = src.byteOffset;
  switch (dtype) {
    case 'BF16': {
      const h = new Uint16Array(buf, off, n);
      const ou = new Uint32Array(o.buffer, o.byteOffset, n);
      for (let i = 0; i < n; i++) ou[i] = h[i]! << 16;
      return o;
    }
    case 'F16': {
      const h = new Uint16Array(buf, off, n);
      const lut = f16Lut();
      for (let i = 0; i < n; i++) o[i] = lut[h[i]!]!;
      return o;
    }
    case 'F32': o.set(new Float32Array(buf, off, n)); return o;
    case 'F64': { const d = new Float64Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = d[i]!; return o; }
    case 'F8_E4M3': for (let i = 0; i < n; i++) o[i] = f8e4m3ToNumber(src[i]!); return o;
    case 'F8_E5M2': for (let i = 0; i < n; i++) o[i] = f8e5m2ToNumber(src[i]!); return o;
    case 'BOOL': case 'U8': for (let i = 0; i < n; i++) o[i] = src[i]!; return o;
    case 'I8': { const d = new Int8Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = d[i]!; return o; }
    case 'I16': { const d = new Int16Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = d[i]!; return o; }
    case 'U16': { const d = new Uint16Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = d[i]!; return o; }
    case 'I32': { const d = new Int32Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = d[i]!; return o; }
    case 'U32': { const d = new Uint32Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = d[i]!; return o; }
    case 'I64': { const d = new BigInt64Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = Number(d[i]!); return o; }
    case 'U64': { const d = new BigUint64Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = Number(d[i]!); return o; }
  }
}

/**
 * Decodes raw tensor bytes to float64: exact for every float dtype and for integers up to
 * 2^53 (I32/U32/I64/U64 are decoded directly, not through float32, which would round
 * anything above 2^24).
 */
export function decodeToFloat64(bytes: Uint8Array, dtype: DType, out?: Float64Array): Float64Array {
  const n = bytes.byteLength / ITEMSIZE[dtype];
  const o = out ?? new Float64Array(n);
  const src = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const buf = src.buffer, off = src.byteOffset;
  switch (dtype) {
    case 'F64': o.set(new Float64Array(buf, off, n)); return o;
    case 'I32': o.set(new Int32Array(buf, off, n)); return o;
    case 'U32': o.set(new Uint32Array(buf, off, n)); return o;
    case 'I64': { const d = new BigInt64Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = Number(d[i]!); return o; }
    case 'U64': { const d = new BigUint64Array(buf, off, n); for (let i = 0; i < n; i++) o[i] = Number(d[i]!); return o; }
    default: {
      // Every remaining dtype is exactly representable in float32.
      const f = decodeToFloat32(src, dtype);
      for (let i = 0; i < n; i++) o[i] = f[i]!;
      return o;
    }
  }
}

/** Encodes float32 values into the bytes of a float dtype (RNE for bf16/f16). */
export function encodeFromFloat32(values: Float32Array, dtype: 'BF16' | 'F16' | 'F32'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  if (dtype === 'BF16') {
    const h = f32ToBf16Array(values);
    return new Uint8Array(h.buffer);
  }
  const h = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) h[i] = numberToF16(values[i]!);
  return new Uint8Array(h.buffer);
}

/** number → f16 bit pattern, round to nearest even. */
export function numberToF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  let a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -24 * 0.5) return sign;
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; else if (2 ** (e + 1) <= a) e++;
  if (e < -14) {
    const m = roundHalfEven(a / 2 ** -24);
    return sign | m; // m may reach 1024, which correctly becomes the smallest normal
  }
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) { m = 0; e++; }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
