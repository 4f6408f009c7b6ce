/** Principal / low-magnitude masks and overlaps (SPEC §4): exact selection, exact-SVD oracle, baselines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Mat, exactSVD, qrThin, randn64, reconstruct, toMat32 } from '../src/linalg/index.js';
import { BitMask } from '../src/probes/mask.js';
import {
  alphaCount, countPerBin, lowMagnitudeMask, magnitudeBinSizes, overlapCounts, overlapRatios, principalMask, rankKReconstruction,
  rankSelect, referenceBins,
} from '../src/probes/principal.js';
import { Rng } from '../src/util/random.js';

test('rankSelect: exactly count entries, order by |x| or value, ties by lower flat index (sort oracle, fp32 and fp64)', () => {
  const rng = new Rng(1);
  for (let trial = 0; trial < 120; trial++) {
    const n = 1 + rng.int(400);
    const v = trial % 2 ? new Float64Array(n) : new Float32Array(n);
    // many exact ties, signed zeros
    for (let i = 0; i < n; i++) v[i] = rng.int(3) === 0 ? [0, -0, 0.5, -0.5, 2][rng.int(5)]! : rng.normal();
    for (const order of ['top', 'bottom'] as const) for (const by of ['abs', 'value'] as const) {
      const c = rng.int(n + 1);
      const m = rankSelect(v, c, { order, by });
      const key = (i: number): number => (by === 'abs' ? Math.abs(v[i]!) : v[i]! + 0);
      const idx = [...Array(n).keys()].sort((a, b) => (order === 'top' ? key(b) - key(a) : key(a) - key(b)) || a - b);
      const want = new Set(idx.slice(0, c));
      assert.equal(m.count(), c);
      for (let i = 0; i < n; i++) assert.equal(m.get(i), want.has(i), `trial ${trial} ${order}/${by} entry ${i}`);
    }
  }
});

test('rankSelect: hand case with ties; NaN ranks as the largest magnitude', () => {
  const v = new Float32Array([1, -3, 3, 0, -0, 2, NaN]);
  assert.deepEqual([...Array(7).keys()].filter((i) => rankSelect(v, 3, { order: 'top' }).get(i)), [1, 2, 6]);
  assert.deepEqual([...Array(7).keys()].filter((i) => rankSelect(v, 2, { order: 'top' }).get(i)), [1, 6]);
  assert.deepEqual([...Array(7).keys()].filter((i) => rankSelect(v, 3, { order: 'bottom' }).get(i)), [0, 3, 4]);
  assert.deepEqual([...Array(7).keys()].filter((i) => rankSelect(v, 1, { order: 'bottom' }).get(i)), [3]);
  assert.deepEqual([...Array(7).keys()].filter((i) => rankSelect(v, 2, { order: 'bottom', by: 'value' }).get(i)), [1, 3]);
});

test('rankSelect: the fp32 |x| fast path selects exactly what the general (fp64-key) path selects, incl. NaN, ±Inf, ±0, subnormals, word edges', () => {
  const rng = new Rng(5);
  const special = [0, -0, NaN, Infinity, -Infinity, 1e-45, -1e-45, 3, -3];
  for (const n of [1, 31, 32, 33, 64, 65, 1000]) for (const mode of ['normal', 'ties', 'special'] as const) {
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = mode === 'normal' ? rng.normal() : mode === 'ties' ? rng.int(4) - 2 : special[rng.int(special.length)]!;
    const v64 = Float64Array.from(v); // |x| order and ties are preserved by the widening
    for (const order of ['top', 'bottom'] as const) for (const c of [0, 1, n >> 2, n >> 1, n - 1, n]) {
      assert.deepEqual(rankSelect(v, c, { order }).words, rankSelect(v64, c, { order }).words, `n ${n} ${mode} ${order} count ${c}`);
    }
  }
});

test('alphaCount = floor(α·n) without binary-rounding surprises', () => {
  assert.equal(alphaCount(0.5, 7), 3);
  assert.equal(alphaCount(0.29, 100), 29);
  assert.equal(alphaCount(0.7, 10), 7);
  assert.equal(alphaCount(0, 10), 0);
  assert.equal(alphaCount(1, 10), 10);
  assert.throws(() => alphaCount(1.5, 10), RangeError);
});

function lowRankPlusNoise(m: number, n: number, sigma: number[], noise: number, rng: Rng): Mat {
  const U = qrThin(randn64(m, sigma.length, rng)).Q, V = qrThin(randn64(n, sigma.length, rng)).Q;
  const W = reconstruct(U, sigma, V);
  for (let i = 0; i < W.data.length; i++) W.data[i] = W.data[i]! + noise * rng.normal();
  return toMat32(W);
}

test('principalMask (randomized top-k) equals the exact-SVD mask except where scores tie within rounding; reconstruction within 1e-4', async () => {
  const rng = new Rng(7);
  const sigma = Array.from({ length: 40 }, (_, i) => 5 * 0.85 ** i);
  const W = lowRankPlusNoise(150, 90, sigma, 1e-3, rng);
  for (const k of [4, 16]) {
    const approx = await rankKReconstruction(W, k);
    const ex = exactSVD(W);
    const exactRec = reconstruct(ex.U, ex.S, ex.V, k).data;
    let num = 0, den = 0;
    for (let i = 0; i < exactRec.length; i++) { num += (approx[i]! - exactRec[i]!) ** 2; den += exactRec[i]! ** 2; }
    assert.ok(Math.sqrt(num / den) < 1e-4, `k=${k}: rank-k reconstruction rel error ${Math.sqrt(num / den)}`);
    const a = await principalMask(W, k, 0.5);
    const b = await principalMask(W, k, 0.5, { exact: true, precision: 'fp64' });
    assert.equal(a.count(), Math.floor(0.5 * 150 * 90));
    assert.equal(b.count(), a.count());
    // entries that differ must sit at the selection threshold (score within rounding of it)
    const scores = Float64Array.from(exactRec, Math.abs);
    const sorted = Float64Array.from(scores).sort().reverse();
    const thr = sorted[a.count() - 1]!;
    let diff = 0;
    for (let i = 0; i < scores.length; i++) {
      if (a.get(i) !== b.get(i)) { diff++; assert.ok(Math.abs(scores[i]! - thr) <= 1e-5 * sorted[0]!, `entry ${i} differs away from the threshold`); }
    }
    assert.ok(diff <= 4, `${diff} entries differ`);
  }
});

test('lowMagnitudeMask = Bottom_α(|W0|) exactly floor(α·n) entries; M_princ ∧ ¬M_low via BitMask', () => {
  const W = { rows: 2, cols: 3, data: new Float32Array([0.1, -5, 0.2, -0.1, 3, 0.05]) };
  const low = lowMagnitudeMask(W, 0.5);
  assert.deepEqual([...Array(6).keys()].filter((i) => low.get(i)), [0, 3, 5]);
  assert.deepEqual(low.shape, [2, 3]);
});

test('overlap counts: observed, random and magnitude-matched baselines on a hand case', () => {
  // 8 entries, 2 bins of 4: bin 0 = entries 0..3, bin 1 = 4..7
  const bins = new Uint8Array([0, 0, 0, 0, 1, 1, 1, 1]);
  const sizes = magnitudeBinSizes(bins, 2);
  const ref = BitMask.fromPredicate([2, 4], (i) => i === 0 || i >= 5);   // bin0: 1/4, bin1: 3/4
  const upd = BitMask.fromPredicate([2, 4], (i) => i === 1 || i === 2 || i === 5); // bin0: 2, bin1: 1
  const rb = referenceBins(ref, bins, sizes);
  const c = overlapCounts(ref, rb, upd, countPerBin(upd, bins, 2));
  assert.deepEqual(c, { entries: 8, reference: 4, changed: 3, overlap: 1, magnitudeMatched: 2 * 0.25 + 1 * 0.75 });
  const r = overlapRatios([c]);
  assert.equal(r.overlap, 1 / 3);
  assert.equal(r.random, 0.5);
  assert.equal(r.magnitudeMatched, 1.25 / 3);
  // pooling: counts add, the random baseline is weighted by |M|
  const c2 = { entries: 10, reference: 1, changed: 5, overlap: 0, magnitudeMatched: 0.5 };
  const p = overlapRatios([c, c2]);
  assert.equal(p.overlap, 1 / 8);
  assert.equal(p.random, (3 * 0.5 + 5 * 0.1) / 8);
  assert.equal(p.magnitudeMatched, 1.75 / 8);
  assert.equal(overlapRatios([{ ...c2, changed: 0, overlap: 0, magnitudeMatched: 0 }]).overlap, null);
});

test('property: a magnitude-only update pattern has overlap ≈ magnitude-matched baseline', () => {
  const rng = new Rng(3);
  const n = 4000;
  const bins = new Uint8Array(n);
  for (let i = 0; i < n; i++) bins[i] = Math.floor((i * 20) / n);
  const sizes = magnitudeBinSizes(bins, 20);
  const ref = BitMask.fromPredicate([n], (i) => rng.uniform() < 0.2 + 0.03 * bins[i]!);
  const upd = BitMask.fromPredicate([n], (i) => rng.uniform() < 0.5 - 0.02 * bins[i]!);
  const c = overlapCounts(ref, referenceBins(ref, bins, sizes), upd, countPerBin(upd, bins, 20));
  const r = overlapRatios([c]);
  assert.ok(Math.abs(r.overlap! - r.magnitudeMatched!) < 0.03, `${r.overlap} vs ${r.magnitudeMatched}`);
  assert.ok(r.random! - r.overlap! > 0.02, 'the random baseline alone would suggest avoidance');
});
