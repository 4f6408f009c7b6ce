/**
 * Fuzzing the safetensors reader: 12,000 seeded mutants of valid files (bit flips, byte
 * overwrites, truncations at every boundary, header-length edits, structural JSON edits,
 * insertions, splices). Each must either parse into a layout that is exactly consistent
 * (tensors tile the data buffer, sizes match shapes, every tensor decodes), or fail with a
 * FormatError carrying a documented code and a one-line message. Never another exception.
 * A sample also goes through the on-disk reader, which must agree with the in-memory one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from '../src/errors.js';
import { DTYPES, ITEMSIZE, decodeToFloat64 } from '../src/io/dtype.js';
import { type ParsedHeader, SAFETENSORS_ERRORS, SafetensorsFile, parseSafetensorsBuffer } from '../src/io/safetensors.js';
import { Rng } from '../src/util/random.js';
import { fixture, tempDir } from './helpers.js';
import { concat, seedFiles, u64le } from './io.build.js';

const CASES = 12_000;
const ON_DISK_EVERY = 20; // 600 mutants also read from disk

const enc = new TextEncoder();
const dec = new TextDecoder();

function headerLen(b: Uint8Array): number {
  return Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
}

/** Offsets worth cutting at: the prefix, the header's ends, every tensor's begin and end, ±1. */
function boundaries(b: Uint8Array): number[] {
  const n = headerLen(b);
  const out = [0, 1, 7, 8, 9, 8 + n - 1, 8 + n, 8 + n + 1, b.byteLength - 1];
  try {
    const h = parseSafetensorsBuffer('seed', b);
    for (const t of h.tensors.values()) out.push(t.fileOffset - 1, t.fileOffset, t.fileOffset + 1, t.fileOffset + t.byteLength - 1, t.fileOffset + t.byteLength);
  } catch { /* seeds are valid */ }
  return out.filter((x) => x >= 0 && x < b.byteLength);
}

const INTERESTING_BYTES = [0x00, 0xff, 0x7f, 0x80, 0xc0, 0x22, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x30, 0x31, 0x39, 0x2d, 0x2e, 0x65, 0x20, 0x5c, 0x0a, 0x6e];
const INTERESTING_NUMBERS: unknown[] = [0, 1, -1, 2, 3, 7, 8, 255, 256, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64, 1.5, -0, 1e300, '1', null, [], {}];
const BAD_DTYPES: unknown[] = ['bf16', 'F8_E8M0', 'C64', '', 'F32 ', 1, null, ['F32']];

/** Structural edits on the parsed header, re-serialized with a correct length prefix so the
 * deeper validation rules are what gets exercised. */
function jsonMutation(rng: Rng, b: Uint8Array): Uint8Array {
  const n = headerLen(b);
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(dec.decode(b.subarray(8, 8 + n))) as Record<string, unknown>;
  } catch {
    return b; // already broken by an earlier edit
  }
  if (h === null || typeof h !== 'object' || Array.isArray(h)) return b;
  const data = b.subarray(8 + n);
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  let text: string | null = null;
  const t0 = names.length ? h[pick(names)] : null;
  const t = t0 !== null && typeof t0 === 'object' && !Array.isArray(t0) ? (t0 as Record<string, unknown>) : null;
  switch (rng.int(13)) {
    case 0: if (t) t.dtype = rng.int(2) ? pick(DTYPES) : pick(BAD_DTYPES); break;
    case 1: if (t && Array.isArray(t.shape) && t.shape.length) (t.shape as unknown[])[rng.int(t.shape.length)] = pick(INTERESTING_NUMBERS); break;
    case 2: if (t && Array.isArray(t.data_offsets)) (t.data_offsets as unknown[])[rng.int(2)] = pick(INTERESTING_NUMBERS); break;
    case 3: if (t) delete t[pick(['dtype', 'shape', 'data_offsets'])]; break;
    case 4: if (t) t.shape = rng.int(2) ? [] : [...(t.shape as number[]), pick([0, 1, 2])]; break;
    case 5: { // swap two tensors' offsets
      if (names.length > 1) {
        const a = h[pick(names)] as Record<string, unknown> | null, c = h[pick(names)] as Record<string, unknown> | null;
        if (a && c && typeof a === 'object' && typeof c === 'object') [a.data_offsets, c.data_offsets] = [c.data_offsets, a.data_offsets];
      }
      break;
    }
    case 6: h.__metadata__ = pick<unknown>([{ a: 1 }, 'x', null, [], { k: 'v' }, { '': '' }]); break;
    case 7: if (names.length) h[pick(names)] = pick<unknown>([1, 'x', null, [], {}, { dtype: 'U8' }]); break;
    case 8: { // a duplicate key at the top level or inside an entry, in the text
      const s = JSON.stringify(h);
      const i = s.indexOf('{', 1);
      text = i > 0 && rng.int(2) ? s.slice(0, i + 1) + '"dtype":"U8",' + s.slice(i + 1) : s.replace(/^\{/, `{${JSON.stringify(names[0] ?? 'x')}:{},`);
      break;
    }
    case 9: text = JSON.stringify(h) + pick(['', ' ', '\t\n', '\0', '}', ' {}', '\u00a0']); break;
    case 10: text = pick(['', ' ', '\t']) + JSON.stringify(h); break;
    case 11: { // move a tensor: both offsets shifted, so the size still matches (gap / overlap)
      if (t && Array.isArray(t.data_offsets)) { const k = pick([-8, -2, -1, 1, 2, 8]); t.data_offsets = (t.data_offsets as number[]).map((o) => Number(o) + k); }
      break;
    }
    default: if (t && Array.isArray(t.data_offsets)) { const o = t.data_offsets as number[]; t.data_offsets = [o[0], Number(o[1] ?? 0) + pick([-1, 1, 8, -8])]; } break;
  }
  const hb = enc.encode(text ?? JSON.stringify(h));
  return concat(u64le(hb.byteLength), hb, data);
}

function mutate(rng: Rng, b: Uint8Array): Uint8Array {
  const n = headerLen(b);
  const m = b.slice();
  switch (rng.int(9)) {
    case 0: { // bit flips, mostly in the prefix and header
      const flips = 1 + rng.int(4);
      for (let k = 0; k < flips; k++) {
        const at = rng.int(10) < 7 ? rng.int(Math.min(b.byteLength, 8 + n)) : rng.int(b.byteLength);
        m[at]! ^= 1 << rng.int(8);
      }
      return m;
    }
    case 1: { // overwrite with an interesting byte
      const at = rng.int(10) < 8 ? 8 + rng.int(Math.max(1, n)) : rng.int(b.byteLength);
      if (at < m.byteLength) m[at] = INTERESTING_BYTES[rng.int(INTERESTING_BYTES.length)]!;
      return m;
    }
    case 2: { // truncate at a boundary
      const bs = boundaries(b);
      return b.slice(0, bs[rng.int(bs.length)]!);
    }
    case 3: return b.slice(0, rng.int(b.byteLength)); // truncate anywhere
    case 4: { // header-length edits
      const choices = [0n, 1n, BigInt(n - 1), BigInt(n + 1), BigInt(n - 8), BigInt(n + 8), BigInt(b.byteLength - 8), BigInt(b.byteLength - 7),
        BigInt(n) + (1n << 32n), 100_000_000n, 100_000_001n, (1n << 63n), (1n << 64n) - 1n, BigInt(rng.nextU32()) * BigInt(rng.nextU32())];
      const v = choices[rng.int(choices.length)]!;
      const c = v < 0n ? 0n : v & ((1n << 64n) - 1n);
      new DataView(m.buffer).setBigUint64(0, c, true);
      return m;
    }
    case 5: return jsonMutation(rng, b);
    case 6: { // insert or delete bytes (shifts everything after)
      const at = rng.int(b.byteLength + 1);
      if (rng.int(2)) return concat(b.subarray(0, at), new Uint8Array(1 + rng.int(8)).fill(INTERESTING_BYTES[rng.int(INTERESTING_BYTES.length)]!), b.subarray(at));
      return concat(b.subarray(0, at), b.subarray(Math.min(b.byteLength, at + 1 + rng.int(8))));
    }
    case 7: return concat(b, new Uint8Array(1 + rng.int(16))); // append (polyglot)
    default: return jsonMutation(rng, jsonMutation(rng, b)); // two structural edits
  }
}

/** Everything a successful parse promises, checked against the bytes. */
function checkConsistent(h: ParsedHeader, b: Uint8Array): void {
  assert.equal(h.dataStart, 8 + h.headerLength);
  assert.ok(h.headerLength <= b.byteLength - 8, 'header inside the file');
  const ts = [...h.tensors.values()].sort((x, y) => x.fileOffset - y.fileOffset || x.byteLength - y.byteLength);
  let pos = h.dataStart;
  for (const t of ts) {
    assert.equal(t.fileOffset, pos, `${t.name} tiles the data`);
    const numel = t.shape.reduce((a, d) => a * d, 1);
    assert.equal(t.numel, numel);
    assert.equal(t.byteLength, numel * ITEMSIZE[t.dtype]);
    const v = decodeToFloat64(b.subarray(t.fileOffset, t.fileOffset + t.byteLength), t.dtype);
    assert.equal(v.length, numel);
    pos += t.byteLength;
  }
  assert.equal(pos, b.byteLength, 'data ends at the end of the file');
  for (const v of Object.values(h.metadata)) assert.equal(typeof v, 'string');
}

type Outcome = { ok: true; h: ParsedHeader } | { ok: false; code: string };

function classify(f: () => ParsedHeader, what: string): Outcome {
  try {
    return { ok: true, h: f() };
  } catch (e) {
    if (!(e instanceof FormatError)) throw new Error(`${what}: not a FormatError: ${e instanceof Error ? e.stack : String(e)}`);
    assert.ok(e.code in SAFETENSORS_ERRORS, `${what}: undocumented code ${e.code}`);
    assert.ok(!/[\n\r]/.test(e.message), `${what}: multi-line message: ${JSON.stringify(e.message)}`);
    return { ok: false, code: e.code };
  }
}

test(`fuzz: ${CASES} mutants of valid files parse consistently or fail with a named FormatError`, (t) => {
  const rng = new Rng(20251126);
  const seeds = seedFiles();
  // Real shards too (written by the project's own writer).
  const tiny = fixture('io', 'tiny-sharded');
  for (const f of fs.readdirSync(tiny).filter((x) => x.endsWith('.safetensors')).sort()) seeds.push(new Uint8Array(fs.readFileSync(path.join(tiny, f))));
  for (const s of seeds) checkConsistent(parseSafetensorsBuffer('seed', s), s);
  const dir = tempDir('rlvr-io-fuzz-');
  const heapBefore = process.memoryUsage().heapUsed;
  const codes = new Map<string, number>();
  let parsed = 0;
  let onDisk = 0;
  for (let i = 0; i < CASES; i++) {
    const seed = seeds[rng.int(seeds.length)]!;
    const m = mutate(rng, seed);
    assert.ok(m.byteLength <= seed.byteLength + 256, 'mutants stay small');
    const what = `case ${i}`;
    const r = classify(() => parseSafetensorsBuffer('mem', m), what);
    if (r.ok) { parsed++; checkConsistent(r.h, m); } else codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
    if (i % ON_DISK_EVERY === 0) {
      onDisk++;
      const p = path.join(dir, `m${i % 7}.safetensors`);
      fs.writeFileSync(p, m);
      let file: SafetensorsFile | null = null;
      const d = classify(() => { file = SafetensorsFile.open(p); return { tensors: new Map(file.tensors), metadata: { ...file.metadata }, headerLength: file.headerLength, dataStart: file.dataStart }; }, `${what} on disk`);
      try {
        assert.equal(d.ok, r.ok, `${what}: disk and memory disagree`);
        if (d.ok && r.ok) {
          assert.deepEqual([...d.h.tensors.entries()], [...r.h.tensors.entries()]);
          // Every tensor's bytes read back from disk equal the mutant's bytes.
          for (const t of d.h.tensors.values()) {
            assert.deepEqual(file!.readBytes(t.name), m.subarray(t.fileOffset, t.fileOffset + t.byteLength), `${what}: ${t.name}`);
          }
        } else if (!d.ok && !r.ok) {
          assert.equal(d.code, r.code, `${what}: codes differ`);
        }
      } finally {
        (file as SafetensorsFile | null)?.close();
      }
    }
  }
  const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
  t.diagnostic(`${parsed} parsed; errors: ${[...codes].sort().map(([c, k]) => `${c}=${k}`).join(' ')}; heap +${(heapGrowth / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(heapGrowth < 256 * 2 ** 20, `heap grew ${heapGrowth} bytes`);
  // The mutators reach both outcomes and a wide spread of codes (a fuzz that only ever
  // produces one error would test nothing).
  assert.ok(parsed > CASES / 50, `${parsed} mutants parsed`);
  const unseen = Object.keys(SAFETENSORS_ERRORS).filter((c) => c !== 'E_NOT_FILE' && !codes.has(c));
  assert.deepEqual(unseen, [], 'every file-level error code is reached by some mutant');
  assert.equal(onDisk, CASES / ON_DISK_EVERY);
});
