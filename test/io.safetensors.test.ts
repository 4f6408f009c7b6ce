/**
 * The safetensors reader: one hand-built file per error code, the valid edge cases of the
 * format, the reference implementation's rules, and reads past 4 GB on a sparse file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError, RlvrError } from '../src/errors.js';
import { DTYPES, ITEMSIZE } from '../src/io/dtype.js';
import {
  MAX_HEADER_BYTES, SAFETENSORS_ERRORS, type SafetensorsErrorCode, SafetensorsFile, parseSafetensorsBuffer,
} from '../src/io/safetensors.js';
import { writeSafetensors } from '../src/io/writer.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { Rng } from '../src/util/random.js';
import { tempDir } from './helpers.js';
import { concat, jsonFile, randomTensor, rawFile, u64le, validFile } from './io.build.js';

const dir = tempDir('rlvr-io-st-');
let counter = 0;
function onDisk(bytes: Uint8Array): string {
  const p = path.join(dir, `f${counter++}.safetensors`);
  fs.writeFileSync(p, bytes);
  return p;
}

/** Asserts both the in-memory and the on-disk reader reject `bytes` with `code`. */
function rejects(bytes: Uint8Array, code: string, msg?: RegExp): void {
  assert.throws(() => parseSafetensorsBuffer('mem', bytes), (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected FormatError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.file, 'mem');
    if (msg) assert.match(e.message, msg);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
  const p = onDisk(bytes);
  assert.throws(() => SafetensorsFile.open(p), (e: unknown) => e instanceof FormatError && e.code === code && e.file === p);
}

const I32 = (o: [number, number], shape = [2, 2]): Record<string, unknown> => ({ dtype: 'I32', shape, data_offsets: o });

/** One hand-built file per error code (E_NOT_FILE has its own test: it needs a FIFO). */
const PER_CODE: Record<Exclude<SafetensorsErrorCode, 'E_NOT_FILE'>, [Uint8Array, RegExp][]> = {
  E_TOO_SMALL: [[new Uint8Array(0), /0 bytes/], [new Uint8Array(7), /7 bytes/]],
  E_HEADER_TOO_LARGE: [
    [rawFile('{}', 0, MAX_HEADER_BYTES + 1), /100000001 bytes/],
    [rawFile('{}', 0, (1n << 64n) - 1n), /18446744073709551615/],
  ],
  E_HEADER_PAST_END: [[rawFile('{}', 0, 3), /header 3 bytes, file 10 bytes/], [rawFile('', 0, 1), /header 1/]],
  E_HEADER_UTF8: [[rawFile(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), /UTF-8/]],
  E_HEADER_JSON: [
    [rawFile('{"a":'), /not valid JSON/],
    [rawFile(''), /not valid JSON/],
    [rawFile('\ufeff{}'), /not valid JSON/],
    [rawFile('{}\0'), /not valid JSON/],
    [rawFile('{"a\\udc00":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'), /unpaired surrogate/],
    [rawFile('{"__metadata__":{"k":"\\ud800x"}}'), /unpaired surrogate/],
  ],
  E_HEADER_NOT_OBJECT: [[rawFile('[]'), /not a JSON object/], [rawFile('"x"'), /object/], [rawFile('null'), /object/], [rawFile('7'), /object/]],
  E_DUPLICATE_NAME: [
    [rawFile(`{"w":${JSON.stringify(I32([0, 16]))},"w":${JSON.stringify(I32([0, 16]))}}`, 16), /"w"/],
    // The same key spelled with an escape is still the same key.
    [rawFile(`{"wa":${JSON.stringify(I32([0, 16]))},"w\\u0061":${JSON.stringify(I32([16, 32]))}}`, 32), /"wa"/],
    [rawFile('{"__metadata__":{},"__metadata__":{}}'), /"__metadata__"/],
  ],
  E_DUPLICATE_KEY: [
    [rawFile('{"w":{"dtype":"U8","shape":[1],"shape":[1],"data_offsets":[0,1]}}', 1), /"shape"/],
    [rawFile('{"__metadata__":{"a":"1","a":"2"}}'), /"a"/],
  ],
  E_METADATA: [[jsonFile({ __metadata__: { a: 1 } }), /key "a"/], [jsonFile({ __metadata__: 'x' }), /__metadata__/], [jsonFile({ __metadata__: [] }), /__metadata__/]],
  E_TENSOR_ENTRY: [
    [jsonFile({ w: [] }), /"w" is not an object/],
    [jsonFile({ w: null }), /not an object/],
    [jsonFile({ w: { shape: [0], data_offsets: [0, 0] } }), /"w" has no dtype/],
    [jsonFile({ w: { dtype: 'U8', data_offsets: [0, 0] } }), /has no shape/],
    [jsonFile({ w: { dtype: 'U8', shape: [0] } }), /has no data_offsets/],
  ],
  E_UNKNOWN_DTYPE: [
    [jsonFile({ w: { dtype: 'BF32', shape: [1], data_offsets: [0, 4] } }, 4), /"w": "BF32"\)$/],
    [jsonFile({ w: { dtype: 7, shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype/],
    [jsonFile({ w: { dtype: 'C64', shape: [1], data_offsets: [0, 8] } }, 8), /rlvr-lens does not support/],
  ],
  E_BAD_SHAPE: [
    [jsonFile({ w: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }), /shape/],
    [jsonFile({ w: { dtype: 'U8', shape: [0.5], data_offsets: [0, 0] } }), /shape/],
    [jsonFile({ w: { dtype: 'U8', shape: 3, data_offsets: [0, 3] } }, 3), /shape/],
    [jsonFile({ w: { dtype: 'U8', shape: ['3'], data_offsets: [0, 3] } }, 3), /shape/],
    [rawFile('{"w":{"dtype":"U8","shape":[9007199254740993],"data_offsets":[0,0]}}'), /shape/],
  ],
  E_BAD_OFFSETS: [
    [jsonFile({ w: I32([16, 0]) }, 16), /data_offsets/],
    [jsonFile({ w: { dtype: 'U8', shape: [0], data_offsets: [0] } }), /data_offsets/],
    [jsonFile({ w: { dtype: 'U8', shape: [0], data_offsets: { 0: 0, 1: 0 } } }), /data_offsets/],
    [jsonFile({ w: { dtype: 'U8', shape: [1], data_offsets: [0.5, 1.5] } }, 1), /data_offsets/],
    [jsonFile({ w: { dtype: 'U8', shape: [1], data_offsets: [-1, 0] } }, 1), /data_offsets/],
  ],
  E_SIZE_OVERFLOW: [
    [jsonFile({ w: { dtype: 'U8', shape: [2 ** 32, 2 ** 32, 2 ** 32], data_offsets: [0, 0] } }), /2\^64/],
    [jsonFile({ w: { dtype: 'U8', shape: [2 ** 40, 2 ** 40, 0], data_offsets: [0, 0] } }), /2\^64/],
    [jsonFile({ w: { dtype: 'U64', shape: [2 ** 31, 2 ** 31], data_offsets: [0, 0] } }), /bytes/], // 2^65 bytes... as bits: over u64
    [jsonFile({ w: { dtype: 'F64', shape: [2 ** 50, 16], data_offsets: [0, 0] } }), /144115188075855872 bytes/],
  ],
  E_SIZE_MISMATCH: [
    [jsonFile({ w: I32([0, 4]) }, 4), /I32\[2,2\] needs 16 bytes, offsets give 4/],
    [jsonFile({ w: I32([0, 4], [0]) }, 4), /needs 0 bytes/],
  ],
  E_OFFSETS_GAP: [
    [jsonFile({ a: I32([0, 16]), b: I32([8, 24]) }, 24), /"b" begins at 8, expected 16 \(overlap\)/],
    [jsonFile({ a: I32([0, 16]), b: I32([20, 36]) }, 36), /"b" begins at 20, expected 16 \(gap\)/],
    [jsonFile({ a: I32([0, 16]), b: I32([0, 16]) }, 16), /overlap/],
    [jsonFile({ a: I32([4, 20]) }, 20), /begins at 4, expected 0/],
  ],
  E_TRAILING_BYTES: [[jsonFile({ w: I32([0, 16]) }, 17), /1 extra bytes/], [jsonFile({}, 1), /1 extra/]],
  E_TRUNCATED: [
    [jsonFile({ w: I32([0, 16]) }, 15), /data needs 16 bytes, file has 15/],
    [jsonFile({ w: { dtype: 'U8', shape: [2 ** 40], data_offsets: [0, 2 ** 40] } }), /1099511627776/],
  ],
};

test('every SAFETENSORS_ERRORS code has hand-built cases, and each case fails with that code', () => {
  const codes = Object.keys(SAFETENSORS_ERRORS).filter((c) => c !== 'E_NOT_FILE');
  assert.deepEqual(Object.keys(PER_CODE).sort(), codes.sort());
  for (const [code, cases] of Object.entries(PER_CODE)) {
    assert.ok(cases.length > 0, code);
    for (const [bytes, msg] of cases) rejects(bytes, code, msg);
  }
});

test('the message starts with the documented text and names the file', () => {
  const p = onDisk(jsonFile({ w: I32([0, 16]) }, 17));
  try {
    SafetensorsFile.open(p);
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof RlvrError, String(e));
    assert.equal(e.userLine(), `${p}: data does not end exactly at the end of the file (1 extra bytes)`);
    assert.equal(e.exitCode, 2);
  }
});

test('E_NOT_FILE: a FIFO is rejected without blocking; a folder is EISDIR', (t) => {
  const fifo = path.join(dir, 'fifo.safetensors');
  try {
    execFileSync('mkfifo', [fifo]);
  } catch {
    t.skip('mkfifo not available');
    return;
  }
  assert.throws(() => SafetensorsFile.open(fifo), (e: unknown) => e instanceof FormatError && e.code === 'E_NOT_FILE');
  assert.throws(() => openCheckpoint(fifo), (e: unknown) => e instanceof FormatError && e.code === 'E_NOT_FILE' && e.userLine() === `${fifo}: not a regular file`);
  assert.throws(() => SafetensorsFile.open(dir), (e: unknown) => e instanceof RlvrError && e.code === 'EISDIR' && /is a folder/.test(e.message));
  assert.throws(() => SafetensorsFile.open(path.join(dir, 'nope')), (e: unknown) => e instanceof RlvrError && e.code === 'ENOENT');
});

test('valid edge cases: empty header, {} with whitespace, zero-size and 0-d tensors, metadata', () => {
  // Empty header object, exactly 10 bytes.
  assert.equal(parseSafetensorsBuffer('m', rawFile('{}')).tensors.size, 0);
  // Leading and trailing JSON whitespace (the reference accepts both; padding is spaces).
  assert.equal(parseSafetensorsBuffer('m', rawFile('\t\n{}\r \t\n')).tensors.size, 0);
  assert.equal(parseSafetensorsBuffer('m', rawFile('{}      ')).dataStart, 16);
  // Zero-size tensors (several at the same offset, including between data) and a scalar.
  const h = parseSafetensorsBuffer('m', jsonFile({
    e1: { dtype: 'F32', shape: [2, 0], data_offsets: [0, 0] },
    s: { dtype: 'F64', shape: [], data_offsets: [0, 8] },
    e2: { dtype: 'BF16', shape: [0], data_offsets: [8, 8] },
    e3: { dtype: 'U8', shape: [0, 5, 7], data_offsets: [8, 8] },
    v: { dtype: 'U8', shape: [3], data_offsets: [8, 11] },
  }, 11));
  assert.equal(h.tensors.get('e1')!.numel, 0);
  assert.equal(h.tensors.get('s')!.numel, 1);
  assert.deepEqual(h.tensors.get('s')!.shape, []);
  assert.equal(h.tensors.get('e3')!.byteLength, 0);
  assert.equal(h.tensors.get('v')!.fileOffset, h.dataStart + 8);
  // __metadata__ (string map), null metadata (serde's Option::None), a "__proto__" key.
  const m = parseSafetensorsBuffer('m', rawFile('{"__metadata__":{"format":"pt","__proto__":"x","":"e"}}'));
  assert.deepEqual(Object.entries(m.metadata), [['format', 'pt'], ['__proto__', 'x'], ['', 'e']]);
  assert.equal(Object.keys(parseSafetensorsBuffer('m', rawFile('{"__metadata__":null}')).metadata).length, 0);
  // Unknown extra fields in a tensor entry are ignored (serde ignores them too).
  assert.equal(parseSafetensorsBuffer('m', jsonFile({ w: { dtype: 'U8', shape: [1], data_offsets: [0, 1], extra: { x: 1.5 } } }, 1)).tensors.size, 1);
  // Offsets given out of file order are sorted as the reference does.
  const o = parseSafetensorsBuffer('m', jsonFile({ b: I32([16, 32]), a: I32([0, 16]) }, 32));
  assert.equal(o.tensors.get('b')!.fileOffset - o.dataStart, 16);
  // Non-ASCII and escaped names round-trip.
  const n = parseSafetensorsBuffer('m', rawFile('{"\\u00e9\\ud83d\\ude00":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}'));
  assert.ok(n.tensors.has('é😀'), 'escaped name');
});

test('all 15 dtypes: itemsize, header parse and bytes read back from disk', () => {
  assert.equal(DTYPES.length, 15);
  const rng = new Rng(11);
  const ts = DTYPES.map((d, i) => randomTensor(rng, `t${i}`, d, [3, i % 4]));
  const p = onDisk(validFile(ts, { format: 'pt' }));
  const f = SafetensorsFile.open(p);
  try {
    for (const t of ts) {
      const info = f.get(t.name);
      assert.equal(info.dtype, t.dtype);
      assert.equal(info.byteLength, 3 * (Number(t.name.slice(1)) % 4) * ITEMSIZE[t.dtype]);
      assert.deepEqual(f.readBytes(t.name), t.data);
    }
  } finally {
    f.close();
  }
});

test('readBytes: slices by offset, into a caller buffer, and rejects out-of-range reads', () => {
  const data = new Uint8Array(64).map((_, i) => i);
  const p = onDisk(validFile([{ name: 'w', dtype: 'F32', shape: [16], data }]));
  const f = SafetensorsFile.open(p);
  try {
    assert.deepEqual([...f.readBytes('w', 10, 4)], [10, 11, 12, 13]);
    assert.deepEqual([...f.readBytes('w', 60)], [60, 61, 62, 63]);
    assert.equal(f.readBytes('w', 64).byteLength, 0);
    const into = new Uint8Array(8).fill(255);
    const got = f.readBytes('w', 1, 3, into);
    assert.deepEqual([...got], [1, 2, 3]);
    assert.equal(into[3], 255);
    for (const [off, len] of [[-1, 1], [0, 65], [63, 2], [1.5, 1], [Number.NaN, 1], [0, -1]] as const) {
      assert.throws(() => f.readBytes('w', off, len), (e: unknown) => e instanceof FormatError && e.code === 'E_RANGE');
    }
    assert.throws(() => f.readBytes('w', 0, 16, new Uint8Array(8)), (e: unknown) => e instanceof FormatError && e.code === 'E_RANGE');
    assert.throws(() => f.readBytes('nope'), (e: unknown) => e instanceof FormatError && e.code === 'E_MISSING_TENSOR');
  } finally {
    f.close();
  }
  // A file truncated after it was validated: the short read is a clean E_TRUNCATED.
  const g = SafetensorsFile.open(p);
  fs.truncateSync(p, fs.statSync(p).size - 10);
  try {
    assert.throws(() => g.readBytes('w'), (e: unknown) => e instanceof FormatError && e.code === 'E_TRUNCATED');
  } finally {
    g.close();
  }
});

test('reads at offsets past 2^32 work on a sparse 5 GiB file without using the disk', (t) => {
  const size = 5 * 2 ** 30;
  const p = path.join(dir, 'sparse.safetensors');
  // One U8 tensor covering the whole data buffer: header padded so the length is exact.
  const n = size - 8 - 96;
  const json = JSON.stringify({ big: { dtype: 'U8', shape: [n], data_offsets: [0, n] } });
  assert.ok(json.length <= 96, `header ${json.length} bytes`);
  const hdr = json + ' '.repeat(96 - json.length);
  const fd = fs.openSync(p, 'w');
  try {
    fs.writeSync(fd, concat(u64le(96), hdr));
    fs.ftruncateSync(fd, size);
    // A marker just past 4 GiB (and one at the very end).
    const markerAt = 2 ** 32 + 12345;
    fs.writeSync(fd, new Uint8Array([0xde, 0xad, 0xbe, 0xef]), 0, 4, markerAt);
    fs.writeSync(fd, new Uint8Array([0x42]), 0, 1, size - 1);
  } finally {
    fs.closeSync(fd);
  }
  const st = fs.statSync(p);
  assert.equal(st.size, size);
  if (st.blocks * 512 > 64 * 2 ** 20) {
    t.skip(`file system does not keep sparse files sparse (${st.blocks * 512} bytes used)`);
    return;
  }
  const f = SafetensorsFile.open(p);
  try {
    const info = f.get('big');
    assert.equal(info.byteLength, size - 104);
    assert.equal(info.fileOffset, 104);
    const at = 2 ** 32 + 12345 - 104;
    assert.deepEqual([...f.readBytes('big', at - 2, 8)], [0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0]);
    assert.deepEqual([...f.readBytes('big', info.byteLength - 2)], [0, 0x42]);
  } finally {
    f.close();
  }
  // A file whose tensor would need one byte more than the sparse file holds.
  fs.truncateSync(p, size - 1);
  assert.throws(() => SafetensorsFile.open(p), (e: unknown) => e instanceof FormatError && e.code === 'E_TRUNCATED');
  fs.rmSync(p);
});

test('writeSafetensors output is read back exactly and its header is 8-byte aligned (non-ASCII names too)', () => {
  const rng = new Rng(3);
  for (const name of ['w', 'é', '名字', 'a"b\\c', '__proto__']) {
    const t = randomTensor(rng, name, 'BF16', [3, 5]);
    const p = path.join(dir, `w${counter++}.safetensors`);
    writeSafetensors(p, [{ ...t, data: () => t.data }, { name: 'z', dtype: 'F32', shape: [0], data: new Uint8Array(0) }], { format: 'pt' });
    const f = SafetensorsFile.open(p);
    try {
      assert.equal(f.dataStart % 8, 0, name);
      assert.deepEqual(f.readBytes(name), t.data);
      assert.deepEqual(f.metadata, { format: 'pt' });
      assert.deepEqual([...f.tensors.keys()], [name, 'z']);
    } finally {
      f.close();
    }
  }
});
