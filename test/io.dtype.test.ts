/** Float codecs: bf16, f16, f8 (E4M3FN, E5M2) decoding and RNE encoding, exact values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DTYPES, ITEMSIZE, bf16ToNumber, decodeToFloat32, decodeToFloat64, encodeFromFloat32, f16ToNumber,
  f32BitsToBf16, f32ToBf16Array, f8e4m3ToNumber, f8e5m2ToNumber, isDType, isFloatDType, numberToBf16,
  numberToF16, roundToBf16InPlace,
} from '../src/io/dtype.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function fromBits(b: number): number { u32[0] = b >>> 0; return f32[0]!; }
function bitsOf(x: number): number { f32[0] = x; return u32[0]!; }

test('dtype list and item sizes', () => {
  assert.deepEqual([...DTYPES], ['BOOL', 'U8', 'I8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2']);
  assert.deepEqual(DTYPES.map((d) => ITEMSIZE[d]), [1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 2, 4, 8, 1, 1]);
  assert.equal(isDType('BF16'), true);
  assert.equal(isDType('bf16'), false);
  assert.equal(isDType(undefined), false);
  assert.deepEqual(DTYPES.filter(isFloatDType), ['F16', 'BF16', 'F32', 'F64', 'F8_E4M3', 'F8_E5M2']);
});

test('bf16 decode: ±0, ±Inf, NaN, subnormals, extremes', () => {
  assert.ok(Object.is(bf16ToNumber(0x0000), 0), '+0');
  assert.ok(Object.is(bf16ToNumber(0x8000), -0), '-0');
  assert.equal(bf16ToNumber(0x3f80), 1);
  assert.equal(bf16ToNumber(0xbf80), -1);
  assert.equal(bf16ToNumber(0x7f80), Infinity);
  assert.equal(bf16ToNumber(0xff80), -Infinity);
  assert.ok(Number.isNaN(bf16ToNumber(0x7fc0)), 'qNaN');
  assert.ok(Number.isNaN(bf16ToNumber(0xff81)), 'negative sNaN');
  assert.equal(bf16ToNumber(0x0001), 2 ** -133); // smallest subnormal
  assert.equal(bf16ToNumber(0x007f), 127 * 2 ** -133); // largest subnormal
  assert.equal(bf16ToNumber(0x0080), 2 ** -126); // smallest normal
  assert.equal(bf16ToNumber(0x7f7f), (2 - 2 ** -7) * 2 ** 127); // largest finite
});

test('bf16 encode: round to nearest, ties to even, on float32 bit patterns', () => {
  // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to even (1.0).
  assert.equal(numberToBf16(1 + 2 ** -8), 0x3f80);
  // 1 + 3·2^-8 is halfway between 1+2^-7 (odd mantissa) and 1+2^-6: rounds up to even.
  assert.equal(numberToBf16(1 + 3 * 2 ** -8), 0x3f82);
  // Just above the tie rounds up; just below rounds down.
  assert.equal(f32BitsToBf16(0x3f808001), 0x3f81);
  assert.equal(f32BitsToBf16(0x3f807fff), 0x3f80);
  assert.equal(f32BitsToBf16(0x3f808000), 0x3f80);
  assert.equal(f32BitsToBf16(0x3f818000), 0x3f82);
  // Overflow to Inf at the top: the largest float32 rounds up to +Inf / -Inf.
  assert.equal(f32BitsToBf16(0x7f7fffff), 0x7f80);
  assert.equal(f32BitsToBf16(0xff7fffff), 0xff80);
  // ±0, ±Inf kept; NaN stays NaN (quiet), sign kept, never becomes Inf.
  assert.equal(numberToBf16(0), 0x0000);
  assert.equal(numberToBf16(-0), 0x8000);
  assert.equal(numberToBf16(Infinity), 0x7f80);
  assert.equal(numberToBf16(-Infinity), 0xff80);
  assert.equal(f32BitsToBf16(0x7f800001), 0x7fc0); // signalling NaN with payload only in low bits
  assert.equal(f32BitsToBf16(0xff800001), 0xffc0);
  assert.equal(numberToBf16(Number.NaN) & 0x7fc0, 0x7fc0);
  // Subnormals round like normals (no flush to zero).
  assert.equal(f32BitsToBf16(0x00008000), 0x0000); // tie at the smallest: to even (0)
  assert.equal(f32BitsToBf16(0x00018000), 0x0002); // tie: 1 is odd, round up to 2
  assert.equal(f32BitsToBf16(0x00010000), 0x0001);
  // Largest subnormal + half ULP carries into the smallest normal.
  assert.equal(f32BitsToBf16(0x007fffff), 0x0080);
});

test('bf16: every code round-trips, and the array / in-place encoders agree with the scalar one', () => {
  const bad: number[] = [];
  for (let h = 0; h < 0x10000; h++) {
    const x = bf16ToNumber(h);
    const back = numberToBf16(x);
    if (Number.isNaN(x) ? !Number.isNaN(bf16ToNumber(back)) : back !== h) bad.push(h);
  }
  assert.deepEqual(bad, []);
  // Random float32 bit patterns (deterministic LCG) through all three encoders.
  const n = 20000;
  const a = new Float32Array(n);
  const au = new Uint32Array(a.buffer);
  let s = 12345;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1103515245) + 12345) >>> 0; au[i] = s; }
  const arr = f32ToBf16Array(a);
  const inPlace = a.slice();
  roundToBf16InPlace(inPlace);
  const ipu = new Uint32Array(inPlace.buffer);
  const bad2: string[] = [];
  for (let i = 0; i < n; i++) {
    const want = f32BitsToBf16(au[i]!);
    if (arr[i] !== want || ipu[i]! >>> 16 !== want || (ipu[i]! & 0xffff) !== 0) bad2.push(`encoders differ on ${au[i]!.toString(16)}`);
    // The rounded value is the nearest bf16: no bf16 neighbour is strictly closer.
    const x = fromBits(au[i]!);
    const y = bf16ToNumber(want);
    if (Number.isFinite(x) && Number.isFinite(y) && (want & 0x7fff) !== 0x7f7f) {
      for (const nb of [want - 1, want + 1]) {
        const z = bf16ToNumber(nb & 0xffff);
        if (Number.isFinite(z) && Math.abs(x - z) < Math.abs(x - y)) bad2.push(`not nearest: ${x} → ${y}, ${z} closer`);
      }
    }
  }
  assert.deepEqual(bad2, []);
  // encodeFromFloat32('BF16') gives the same little-endian bytes.
  const bytes = encodeFromFloat32(a, 'BF16');
  assert.deepEqual(new Uint16Array(bytes.buffer, bytes.byteOffset, n), arr);
});

test('f16 decode: ±0, subnormals, Inf, NaN, max', () => {
  assert.ok(Object.is(f16ToNumber(0x8000), -0), '-0');
  assert.equal(f16ToNumber(0x3c00), 1);
  assert.equal(f16ToNumber(0x0001), 2 ** -24);
  assert.equal(f16ToNumber(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16ToNumber(0x0400), 2 ** -14);
  assert.equal(f16ToNumber(0x7bff), 65504);
  assert.equal(f16ToNumber(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16ToNumber(0x7e00)), 'NaN');
  assert.ok(Number.isNaN(f16ToNumber(0xfc01)), 'NaN');
});

test('f16 encode: all codes round-trip; RNE ties, overflow and underflow', () => {
  const bad: number[] = [];
  for (let h = 0; h < 0x10000; h++) {
    const x = f16ToNumber(h);
    if (numberToF16(x) !== (Number.isNaN(x) ? 0x7e00 : h)) bad.push(h);
  }
  assert.deepEqual(bad, []);
  assert.equal(numberToF16(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(numberToF16(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(numberToF16(65519.99), 0x7bff);
  assert.equal(numberToF16(65520), 0x7c00); // tie at the top rounds to Inf
  assert.equal(numberToF16(-1e9), 0xfc00);
  assert.equal(numberToF16(2 ** -25), 0x0000); // tie between 0 and the smallest subnormal → 0
  assert.equal(numberToF16(-(2 ** -25)), 0x8000);
  assert.equal(numberToF16(3 * 2 ** -25), 0x0002); // tie between 1 and 2 subnormal ULPs → 2
  assert.equal(numberToF16(2 ** -25 * 1.0000001), 0x0001);
  assert.equal(numberToF16(1023.5 * 2 ** -24), 0x0400); // carries into the smallest normal
  // encodeFromFloat32 F16 uses the same rounding.
  const b = encodeFromFloat32(new Float32Array([1, -2, 65504, 2 ** -24]), 'F16');
  assert.deepEqual([...new Uint16Array(b.buffer)], [0x3c00, 0xc000, 0x7bff, 0x0001]);
});

test('F8_E4M3 (fn) decoding: exact values, no Inf, NaN only at S.1111.111', () => {
  const want: [number, number][] = [
    [0x00, 0], [0x01, 2 ** -9], [0x07, 7 * 2 ** -9], [0x08, 2 ** -6], [0x38, 1], [0x39, 1.125],
    [0x40, 2], [0x7e, 448], [0x78, 256], [0x77, 240], [0xb8, -1], [0xfe, -448], [0x81, -(2 ** -9)],
  ];
  for (const [b, v] of want) assert.equal(f8e4m3ToNumber(b), v, `0x${b.toString(16)}`);
  assert.ok(Object.is(f8e4m3ToNumber(0x80), -0), '-0');
  assert.ok(Number.isNaN(f8e4m3ToNumber(0x7f)), 'NaN');
  assert.ok(Number.isNaN(f8e4m3ToNumber(0xff)), 'NaN');
  let finite = 0;
  for (let b = 0; b < 256; b++) if (Number.isFinite(f8e4m3ToNumber(b))) finite++;
  assert.equal(finite, 254);
});

test('F8_E5M2 decoding: exact values, Inf and NaN', () => {
  const want: [number, number][] = [
    [0x00, 0], [0x01, 2 ** -16], [0x03, 3 * 2 ** -16], [0x04, 2 ** -14], [0x3c, 1], [0x3d, 1.25],
    [0x7b, 57344], [0x7c, Infinity], [0xfc, -Infinity], [0xbc, -1],
  ];
  for (const [b, v] of want) assert.equal(f8e5m2ToNumber(b), v, `0x${b.toString(16)}`);
  for (const b of [0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff]) assert.ok(Number.isNaN(f8e5m2ToNumber(b)), `0x${b.toString(16)}`);
  // E5M2 is the top byte of an f16: the two decoders agree on every code.
  for (let b = 0; b < 256; b++) {
    const a = f8e5m2ToNumber(b), h = f16ToNumber(b << 8);
    assert.ok(Object.is(a, h) || (Number.isNaN(a) && Number.isNaN(h)), `0x${b.toString(16)}`);
  }
});

test('decodeToFloat32 / decodeToFloat64 for every dtype, also from unaligned bytes', () => {
  const cases: [typeof DTYPES[number], number[], number[]][] = [
    ['BOOL', [0, 1], [0, 1]],
    ['U8', [0, 255], [0, 255]],
    ['I8', [0x80, 0x7f], [-128, 127]],
    ['I16', [0x00, 0x80, 0xff, 0x7f], [-32768, 32767]],
    ['U16', [0xff, 0xff], [65535]],
    ['I32', [0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00, 0x01], [-1, 16777217]],
    ['U32', [0xff, 0xff, 0xff, 0xff], [4294967295]],
    ['I64', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0, 0, 0x20, 0], [-1, 2 ** 53 + 1]],
    ['U64', [0x01, 0, 0, 0, 0, 0, 0x10, 0], [2 ** 52 + 1]],
    ['F16', [0x00, 0x3c, 0x00, 0x80], [1, -0]],
    ['BF16', [0x80, 0x3f, 0x80, 0xff], [1, -Infinity]],
    ['F32', [...new Uint8Array(new Float32Array([0.1, -3]).buffer)], [Math.fround(0.1), -3]],
    ['F64', [...new Uint8Array(new Float64Array([0.1, 1e300]).buffer)], [0.1, 1e300]],
    ['F8_E4M3', [0x38, 0x7e], [1, 448]],
    ['F8_E5M2', [0x3c, 0x7c], [1, Infinity]],
  ];
  for (const [dtype, raw, values] of cases) {
    for (const shift of [0, 1, 3]) {
      // An odd byteOffset: the decoder must copy rather than build a misaligned view.
      const buf = new Uint8Array(raw.length + shift);
      buf.set(raw, shift);
      const bytes = buf.subarray(shift);
      const d64 = decodeToFloat64(bytes, dtype);
      assert.equal(d64.length, values.length);
      values.forEach((v, i) => assert.ok(Object.is(d64[i], v), `${dtype} f64 [${i}] ${d64[i]} != ${v}`));
      const d32 = decodeToFloat32(bytes, dtype);
      values.forEach((v, i) => assert.ok(Object.is(d32[i], Math.fround(v)), `${dtype} f32 [${i}] ${d32[i]} != ${Math.fround(v)}`));
    }
  }
  // The float32 bit pattern of a decoded bf16 is the code shifted up 16 bits.
  const d = decodeToFloat32(new Uint8Array([0x34, 0x12]), 'BF16');
  assert.equal(bitsOf(d[0]!), 0x12340000);
});
