import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitMask, popcount32 } from '../src/probes/mask.js';
import { binade, magnitudeBins } from '../src/probes/magnitude.js';
import { parseShard, selectShard } from '../src/run/shard.js';
import { numberToBf16 } from '../src/io/dtype.js';
import { Rng } from '../src/util/random.js';

test('popcount32 matches a bit loop', () => {
  const r = new Rng(1);
  for (let t = 0; t < 2000; t++) {
    const x = r.nextU32();
    let c = 0;
    for (let b = 0; b < 32; b++) c += (x >>> b) & 1;
    assert.equal(popcount32(x), c);
  }
});

test('BitMask set algebra and row/col counts on a hand-built 3x5 mask', () => {
  // rows: 10100 / 01100 / 00001
  const a = BitMask.fromBytes([3, 5], Uint8Array.from([1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1]));
  const b = BitMask.fromBytes([3, 5], Uint8Array.from([1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]));
  assert.equal(a.count(), 5);
  assert.equal(a.andCount(b), 3);
  assert.equal(a.orCount(b), 6);
  assert.equal(a.andNotCount(b), 2);
  assert.deepEqual([...a.rowCounts()], [2, 2, 1]);
  assert.deepEqual([...a.colCounts()], [1, 1, 2, 0, 1]);
  assert.equal(a.not().count(), 10);
  assert.ok(a.and(b).equals(BitMask.fromBytes([3, 5], Uint8Array.from([1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]))));
  assert.deepEqual([...BitMask.fromBytes([3, 5], a.toBytes()).words], [...a.words]);
});

test('BitMask countRange and not() on lengths not multiple of 32', () => {
  const r = new Rng(7);
  for (const n of [1, 31, 32, 33, 95, 200]) {
    const bytes = Uint8Array.from({ length: n }, () => (r.uniform() < 0.4 ? 1 : 0));
    const m = BitMask.fromBytes([n], bytes);
    const ones = bytes.reduce((s, v) => s + v, 0);
    assert.equal(m.count(), ones);
    assert.equal(m.not().count(), n - ones);
    const lo = Math.floor(n / 3), hi = n - Math.floor(n / 5);
    assert.equal(m.countRange(lo, hi), bytes.slice(lo, hi).reduce((s, v) => s + v, 0));
  }
});

test('magnitudeBins: equal counts, ties by flat index, monotone in |w|', () => {
  const vals = [0, -0, 1, -1, 1, 2, -3, 0.5, 0.5, -0.25];
  const bytes = new Uint8Array(new Uint16Array(vals.map(numberToBf16)).buffer);
  const bins = magnitudeBins(bytes, 'BF16', 5);
  // ranks by (|w|, index): 0(i0) -0(i1) -.25(i9) .5(i7) .5(i8) 1(i2) -1(i3) 1(i4) 2(i5) -3(i6)
  assert.deepEqual([...bins], [0, 0, 2, 3, 3, 4, 4, 1, 2, 1]);
  const f32 = new Uint8Array(Float32Array.from(vals).buffer);
  assert.deepEqual([...magnitudeBins(f32, 'F32', 5)], [...bins]);
});

test('magnitudeBins: bf16 counting sort equals argsort on random data', () => {
  const r = new Rng(3);
  const n = 5000;
  const vals = Array.from({ length: n }, () => r.normal() * 2 ** (r.int(20) - 10));
  const h = new Uint16Array(vals.map(numberToBf16));
  const fromBf16 = magnitudeBins(new Uint8Array(h.buffer), 'BF16', 20);
  const decoded = new Float32Array(n);
  const u = new Uint32Array(decoded.buffer);
  for (let i = 0; i < n; i++) u[i] = h[i]! << 16;
  const fromF32 = magnitudeBins(new Uint8Array(decoded.buffer), 'F32', 20);
  assert.deepEqual([...fromBf16], [...fromF32]);
  const counts = new Array(20).fill(0);
  for (const b of fromBf16) counts[b]++;
  assert.deepEqual(counts, new Array(20).fill(250));
});

test('binade', () => {
  assert.equal(binade(1), 0);
  assert.equal(binade(0.75), -1);
  assert.equal(binade(-8), 3);
  assert.equal(binade(2 ** -133), -133);
  assert.equal(binade(0), -Infinity);
  assert.ok(Number.isNaN(binade(NaN)));
});

test('selectShard partitions every item exactly once, balanced by bytes', () => {
  const items = Array.from({ length: 57 }, (_, i) => ({ name: `model.layers.${i % 19}.t${i}`, bytes: ((i * 7919) % 101) + 1 }));
  const seen = new Map<string, number>();
  const loads: number[] = [];
  for (let s = 0; s < 4; s++) {
    const mine = selectShard(items, { index: s, count: 4 });
    loads.push(mine.reduce((a, b) => a + b.bytes, 0));
    for (const it of mine) seen.set(it.name, (seen.get(it.name) ?? 0) + 1);
  }
  assert.equal(seen.size, items.length);
  assert.ok([...seen.values()].every((c) => c === 1));
  assert.ok(Math.max(...loads) - Math.min(...loads) <= 101);
});

test('parseShard', () => {
  assert.deepEqual(parseShard('2/5'), { index: 2, count: 5 });
  assert.equal(parseShard(undefined), null);
  assert.throws(() => parseShard('5/5'), /index must be/);
  assert.throws(() => parseShard('x'), /--shard must be/);
  assert.deepEqual(parseShard('auto/4', { SLURM_ARRAY_TASK_ID: '3' }), { index: 3, count: 4 });
  assert.deepEqual(parseShard('auto', { JOB_COMPLETION_INDEX: '1', RLVR_SHARD_COUNT: '2' }), { index: 1, count: 2 });
  assert.throws(() => parseShard('auto', {}), /needs SLURM_ARRAY_TASK_ID/);
});

test('Rng is deterministic and well spread', () => {
  const a = new Rng(42), b = new Rng(42);
  for (let i = 0; i < 100; i++) assert.equal(a.nextU32(), b.nextU32());
  const r = new Rng(5);
  let s = 0, s2 = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) { const x = r.normal(); s += x; s2 += x * x; }
  assert.ok(Math.abs(s / n) < 0.03);
  assert.ok(Math.abs(s2 / n - 1) < 0.05);
  assert.deepEqual(new Rng(9).permutation(10).slice().sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});
