/**
 * The update-mask rules on hand-built values: ±0, subnormals, NaN/Inf, the App. E.1 cases,
 * the η rule = bitwise compare property, the SIMD kernel = JS kernel, and markChanged at
 * arbitrary offsets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bf16ToNumber, numberToBf16 } from '../src/io/dtype.js';
import { BitMask } from '../src/probes/mask.js';
import { Bf16DiffKernel, diffJs, wasmSimdAvailable } from '../src/probes/bf16-kernel.js';
import {
  ChunkScratch, DEFAULT_PROBE, chunkWords, countNonFinite, markChanged, orWordsAt, ruleWords, ruleWordsBf16,
} from '../src/probes/update.js';
import { Rng } from '../src/util/random.js';

const P = { ...DEFAULT_PROBE };

function bf16Bytes(codes: number[]): Uint8Array {
  return new Uint8Array(Uint16Array.from(codes).buffer);
}
function f32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}
function bits(words: Uint32Array, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (words[i >>> 5]! >>> (i & 31)) & 1);
}

test('bf16 bitwise rule: ±0, subnormals, NaN payloads, infinities (exact per-entry verdicts)', () => {
  const cases: [number, number, 0 | 1][] = [
    [0x0000, 0x8000, 0], // +0 vs −0: equal
    [0x8000, 0x8000, 0],
    [0x0001, 0x0001, 0], // smallest subnormal, unchanged
    [0x0001, 0x0002, 1], // two subnormals, relative gap 1/2
    [0x0001, 0x8001, 1], // sign flip of a subnormal
    [0x007f, 0x0080, 1], // largest subnormal vs smallest normal
    [0x0000, 0x0001, 1], // zero vs subnormal
    [0x3f80, 0x3f81, 1], // 1.0 vs next bf16
    [0x3f80, 0x3f80, 0],
    [0x7fc0, 0x7fc0, 0], // the same NaN: unchanged (but non-finite)
    [0x7fc0, 0x7fc1, 1], // NaN payload changed
    [0x7f80, 0x7f80, 0], // +Inf unchanged
    [0x7f80, 0xff80, 1], // +Inf → −Inf
    [0x3f80, 0x7f80, 1], // finite → Inf
    [0x7f7f, 0x7f7e, 1], // largest finite magnitudes
  ];
  const a = bf16Bytes(cases.map((c) => c[0])), b = bf16Bytes(cases.map((c) => c[1]));
  const s = new ChunkScratch(64);
  const words = new Uint32Array(1);
  const r = chunkWords(s, a, 'BF16', b, 'BF16', cases.length, P, words);
  assert.deepEqual(bits(words, cases.length), cases.map((c) => c[2]));
  assert.equal(r.changed, cases.filter((c) => c[2] === 1).length);
  assert.equal(r.nonFinite, 5); // entries 9..13 have a NaN or Inf on at least one side
  // The η rule on decoded values (general path) gives the same verdicts.
  const [x, y] = s.decode(a, 'BF16', b, 'BF16', cases.length);
  const w2 = new Uint32Array(1);
  const same = (i: number): boolean => a[2 * i] === b[2 * i] && a[2 * i + 1] === b[2 * i + 1];
  const r2 = ruleWords(x, y, cases.length, 'bf16', P, w2, same);
  assert.deepEqual(bits(w2, cases.length), cases.map((c) => c[2]));
  assert.equal(r2.nonFinite, r.nonFinite);
});

test('NaN/Inf counts per side', () => {
  assert.deepEqual(countNonFinite(bf16Bytes([0x7fc0, 0xffc1, 0x7f80, 0xff80, 0x3f80, 0x0000]), 'BF16'), { nan: 2, inf: 2 });
  assert.deepEqual(countNonFinite(f32Bytes([NaN, Infinity, -Infinity, 1, 0]), 'F32'), { nan: 1, inf: 2 });
  assert.deepEqual(countNonFinite(new Uint8Array(Uint16Array.from([0x7c00, 0x7e00, 0x3c00]).buffer), 'F16'), { nan: 1, inf: 1 });
});

test('App. E.1: fixed 1e-5 tolerance is wrong at both ends of the magnitude range (exact counts)', () => {
  // 100 fp32 pairs near 1024: Δ = 1e-3 > 1e-5 (abs: changed), relative 1e-6 < η (η: unchanged),
  // and both sides round to the bf16 code of 1024 (ULP 8 there).
  const big = Array.from({ length: 100 }, (_, i) => 1024 + 0.001 * (i + 1));
  const bigT = big.map((v) => v + 0.001);
  // 100 pairs near 1e-6: Δ ≤ 2e-6 ≤ 1e-5 (abs: unchanged), relative 1/2 (η: changed).
  const small = Array.from({ length: 100 }, (_, i) => 1e-6 * (1 + i / 100));
  const smallT = small.map((v) => 2 * v);
  const a = f32Bytes([...big, ...small]), b = f32Bytes([...bigT, ...smallT]);
  const n = 200;
  const s = new ChunkScratch(256);
  const eta = new Uint32Array(7), abs = new Uint32Array(7);
  const re = chunkWords(s, a, 'F32', b, 'F32', n, P, eta, 'bf16');
  const ra = chunkWords(s, a, 'F32', b, 'F32', n, P, abs, 'abs');
  assert.equal(re.changed, 100);
  assert.equal(ra.changed, 100);
  const eb = bits(eta, n), ab = bits(abs, n);
  assert.equal(eb.slice(0, 100).reduce((p, c) => p + c, 0), 0);
  assert.equal(eb.slice(100).reduce((p, c) => p + c, 0), 100);
  assert.equal(ab.slice(0, 100).reduce((p, c) => p + c, 0), 100);
  assert.equal(ab.slice(100).reduce((p, c) => p + c, 0), 0);
  // bf16-visible: the large ones share the code of 1024, the small ones do not.
  assert.equal(s.bf16Visible(a, 'F32', b, 'F32', n), 100);
  for (const v of [...big, ...bigT]) assert.equal(numberToBf16(v), numberToBf16(1024));
  // The paper's pair: 1e-6 vs 2e-6 is ⌊134.2⌋ = 134 bf16 ULPs of 1e-6's binade (2^-27) apart,
  // and 128 bf16 codes (one binade) apart.
  const ulp = 2 ** -27;
  assert.equal(Math.floor((2e-6 - 1e-6) / ulp), 134);
  assert.equal(numberToBf16(2e-6) - numberToBf16(1e-6), 128);
  assert.ok(Math.abs(bf16ToNumber(numberToBf16(1e-6)) - 1e-6) <= ulp / 2);
});

test('property: the η rule (η = 1e-3) on decoded bf16 values equals the bitwise compare on 2M random pairs of all magnitudes', () => {
  const N = 1 << 21;
  const rng = new Rng(7);
  const x = new Uint16Array(N), y = new Uint16Array(N);
  for (let i = 0; i < N; i++) {
    const c = rng.nextU32() & 0xffff;
    const r = rng.nextU32();
    x[i] = c;
    switch (r & 3) {
      case 0: y[i] = c; break; // unchanged
      case 1: y[i] = (c & 0x8000) | (((c & 0x7fff) + 1 + ((r >>> 2) & 3)) & 0x7fff); break; // 1–4 ULPs up
      case 2: y[i] = c ^ 0x8000; break; // sign flip (±0 stays equal)
      default: y[i] = r >>> 16; break; // unrelated value
    }
  }
  const a = new Uint8Array(x.buffer), b = new Uint8Array(y.buffer);
  const s = new ChunkScratch(N);
  const wb = new Uint32Array(N / 32), we = new Uint32Array(N / 32);
  const rb = chunkWords(s, a, 'BF16', b, 'BF16', N, P, wb); // bitwise fast path
  const [dx, dy] = s.decode(a, 'BF16', b, 'BF16', N);
  const same = (i: number): boolean => x[i] === y[i];
  const re = ruleWords(dx, dy, N, 'bf16', P, we, same);
  assert.equal(re.changed, rb.changed);
  assert.equal(re.nonFinite, rb.nonFinite);
  for (let g = 0; g < wb.length; g++) if (wb[g] !== we[g]) assert.fail(`word ${g}: bitwise ${wb[g]!.toString(2)} vs η ${we[g]!.toString(2)}`);
  // The table-driven bf16 path (used for abs and large η) equals the decoded rules (on the
  // first 2^18 pairs, and with a tail shorter than 32 entries).
  const M = 1 << 18;
  const wt = new Uint32Array(M / 32), wd = new Uint32Array(M / 32);
  for (const [rule, q] of [['abs', P], ['bf16', { ...P, eta: 0.01 }], ['bf16', P]] as const) {
    for (const m of [M, M - 5]) {
      wt.fill(0); wd.fill(0);
      assert.deepEqual(ruleWordsBf16(x, y, m, rule, q, wt), ruleWords(dx, dy, m, rule, q, wd, same), `${rule} η=${q.eta} n=${m}`);
      assert.deepEqual(wt, wd);
    }
  }
  // Nearly every class is present: both verdicts occur many times.
  assert.ok(rb.changed > N / 3 && rb.changed < N);
  // η just below the bf16 gap still agrees; η above 2^-8 does not (1.0 vs 1+2^-7·… shows it).
  const w3 = new Uint32Array(N / 32);
  assert.equal(ruleWords(dx, dy, N, 'bf16', { ...P, eta: 2 ** -9 }, w3, same).changed, rb.changed);
  assert.ok(ruleWords(dx, dy, N, 'bf16', { ...P, eta: 2 ** -7 }, w3, same).changed < rb.changed);
});

test('WebAssembly SIMD kernels (diff, count) equal the JS kernel (padding, flag, i16 widening)', () => {
  assert.ok(wasmSimdAvailable(), 'Node 20 has WebAssembly SIMD');
  const n = 300_003; // > 4096 groups of 32: the count kernel widens its i16 lanes several times
  const rng = new Rng(3);
  for (const withNonFinite of [false, true]) {
    const kw = new Bf16DiffKernel(n * 8 + 65536, true), kj = new Bf16DiffKernel(n * 8 + 65536, false);
    assert.equal(kw.usesWasm, true);
    assert.equal(kj.usesWasm, false);
    const outs: Uint32Array[] = [];
    const counts: number[] = [];
    const flags: boolean[] = [];
    const xs = new Uint16Array(n), ys = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      xs[i] = rng.nextU32() & 0x7f7f; // finite
      ys[i] = rng.nextU32() & 1 ? xs[i]! : rng.nextU32() & 0x7f7f;
      if (i % 1000 === 0) { xs[i] = 0x8000; ys[i] = 0; } // ±0: unchanged
    }
    if (withNonFinite) ys[n - 1] = 0x7f80;
    for (const k of [kw, kj]) {
      const a = k.alloc(n * 2 + 64), b = k.alloc(n * 2 + 64), o = k.alloc(n / 8 + 64);
      new Uint16Array(k.memory.buffer, a, n).set(xs);
      new Uint16Array(k.memory.buffer, b, n).set(ys);
      // garbage past n must be ignored (zero-padded)
      new Uint16Array(k.memory.buffer, a + 2 * n, 1).fill(0x1234);
      counts.push(k.diff(a, b, n, o));
      flags.push(k.nonFiniteSeen());
      assert.equal(k.count(a, b, n), counts[counts.length - 1]);
      assert.equal(k.nonFiniteSeen(), withNonFinite);
      outs.push(new Uint32Array(k.memory.buffer, o, Math.ceil(n / 32)).slice());
    }
    assert.equal(counts[0], counts[1]);
    assert.deepEqual(outs[0], outs[1]);
    assert.deepEqual(flags, [withNonFinite, withNonFinite]);
    let ref = 0;
    for (let i = 0; i < n; i++) if (xs[i] !== ys[i] && ((xs[i]! | ys[i]!) & 0x7fff) !== 0) ref++;
    assert.equal(counts[0], ref);
  }
  // diffJs alone on a hand case: entry 0 changed, 1 (±0) not, 2 NaN flag
  const words = new Uint32Array(1), flag = new Uint32Array(1);
  const x = new Uint16Array(32), y = new Uint16Array(32);
  x[0] = 0x3f80; y[0] = 0x3f81; x[1] = 0x8000; x[2] = 0x7fc0; y[2] = 0x7fc0;
  assert.equal(diffJs(x, y, words, flag), 1);
  assert.equal(words[0], 1);
  assert.equal(flag[0], 1);
});

test('markChanged ORs chunks at any flat offset (unaligned starts)', () => {
  const n = 1000;
  const rng = new Rng(5);
  const x = new Uint16Array(n), y = new Uint16Array(n);
  for (let i = 0; i < n; i++) { x[i] = rng.nextU32() & 0x7f7f; y[i] = rng.uniform() < 0.3 ? x[i]! ^ 1 : x[i]!; }
  const expected = BitMask.fromPredicate([n], (i) => x[i] !== y[i]);
  for (const cut of [1, 17, 31, 32, 33, 500, 999]) {
    const mask = new BitMask([n]);
    const stats = { nonFinite: 0 };
    const xb = new Uint8Array(x.buffer), yb = new Uint8Array(y.buffer);
    markChanged(mask, 0, xb.subarray(0, 2 * cut), 'BF16', yb.subarray(0, 2 * cut), 'BF16', P, stats);
    markChanged(mask, cut, xb.subarray(2 * cut), 'BF16', yb.subarray(2 * cut), 'BF16', P, stats);
    assert.ok(mask.equals(expected), `cut at ${cut}`);
    assert.equal(stats.nonFinite, 0);
  }
  // orWordsAt keeps bits beyond the chunk untouched and never writes past n
  const m = new BitMask([70]);
  m.set(69);
  orWordsAt(m, 40, Uint32Array.from([0xffffffff]), 5);
  assert.equal(m.count(), 6);
  assert.ok(m.get(40) && m.get(44) && !m.get(45) && m.get(69));
});

test('a dtype change (bf16 base, fp32 tuned) is compared on decoded values', () => {
  const base = bf16Bytes([0x3f80, 0x4000, 0x0000, 0x7fc0]);
  const t = new Float32Array([1.0, 2.0 * (1 + 2 ** -12), -0, NaN]); // equal, sub-η change, ±0, NaN vs NaN
  const s = new ChunkScratch(32);
  const w = new Uint32Array(1);
  const r = chunkWords(s, base, 'BF16', new Uint8Array(t.buffer), 'F32', 4, P, w);
  assert.deepEqual(bits(w, 4), [0, 0, 0, 0]);
  assert.equal(r.nonFinite, 1);
  t[1] = 2.0 * (1 + 2 ** -8);
  const r2 = chunkWords(s, base, 'BF16', new Uint8Array(t.buffer), 'F32', 4, P, w);
  assert.deepEqual(bits(w, 4), [0, 1, 0, 0]);
  assert.equal(r2.changed, 1);
});

test('fp32 SIMD rules equal the JS rules on 2^18 pairs near both thresholds (and with NaN/Inf, ±0, subnormals)', () => {
  const N = 1 << 18;
  const rng = new Rng(11);
  const x = new Float32Array(N), y = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    const mag = 2 ** (rng.int(80) - 60); // 2^-60 .. 2^19
    const u = (rng.uniform() < 0.5 ? -1 : 1) * mag * (1 + rng.uniform());
    x[i] = u;
    switch (rng.int(7)) {
      case 6: x[i] = 0; y[i] = rng.uniform() < 0.5 ? 0 : -0; break; // exact ties: |Δ| = η·max = 0
      case 0: y[i] = u; break;
      case 1: y[i] = u * (1 + 1e-3 * (1 + (rng.uniform() - 0.5) * 1e-3)); break; // at the η boundary
      case 2: y[i] = u + (rng.uniform() < 0.5 ? -1 : 1) * 1e-5 * (1 + (rng.uniform() - 0.5) * 1e-4); break; // at the abs boundary
      case 3: y[i] = u * (1 + (rng.uniform() - 0.5) * 0.01); break;
      case 4: y[i] = rng.uniform() < 0.5 ? -u : 0; break;
      default: y[i] = (rng.nextU32() & 1 ? 1 : -1) * 1e-40 * rng.uniform(); break; // subnormal
    }
  }
  const s = new ChunkScratch(N);
  for (const special of [false, true]) {
    if (special) { x[100] = NaN; y[100] = NaN; x[200] = Infinity; y[300] = -Infinity; x[400] = 0; y[400] = -0; }
    const a = new Uint8Array(x.buffer), b = new Uint8Array(y.buffer);
    for (const [rule, q] of [['bf16', P], ['abs', P], ['bf16', { ...P, eta: 0.004 }]] as const) {
      const ws = new Uint32Array(N / 32), wj = new Uint32Array(N / 32);
      const rs = chunkWords(s, a, 'F32', b, 'F32', N, q, ws, rule);
      const same = (i: number): boolean => a[4 * i] === b[4 * i] && a[4 * i + 1] === b[4 * i + 1] && a[4 * i + 2] === b[4 * i + 2] && a[4 * i + 3] === b[4 * i + 3];
      const rj = ruleWords(x, y, N, rule, q, wj, same);
      assert.deepEqual(rs, rj, `${rule} η=${q.eta} special=${special}`);
      assert.deepEqual(ws, wj);
      assert.ok(rj.changed > N / 10 && rj.changed < N);
    }
    // bf16-visible: RNE codes compared bitwise (±0 equal), against numberToBf16 entry by entry
    let ref = 0;
    for (let i = 0; i < N; i++) {
      const cx = numberToBf16(x[i]!), cy = numberToBf16(y[i]!);
      if (cx !== cy && ((cx | cy) & 0x7fff) !== 0) ref++;
    }
    assert.equal(s.bf16Visible(a, 'F32', b, 'F32', N), ref, `bf16-visible special=${special}`);
  }
});
