/** Locality math on hand-built masks: Jaccard, baselines, pooling, consensus; properties on random masks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitMask } from '../src/probes/mask.js';
import {
  bernoulliJaccard, bf16MagnitudeProfile, binSizes, changedPerBin, consensusCounts, consensusHistogram, consensusHistogramOf, consensusMap, jaccard,
  jaccardMatrix, magnitudeMatchedExpectation, magnitudeMatchedJaccard, meanOffDiagonal, poolGrid, poolLocality, tensorLocality,
} from '../src/probes/locality.js';
import { magnitudeBins } from '../src/probes/magnitude.js';
import { accumulateChangeRate, accumulateChangeRatePatterns, finishChangeRate, newChangeRateAccumulator } from '../src/probes/changerate.js';
import { Rng } from '../src/util/random.js';

const mask = (shape: number[], bits: number[]): BitMask => BitMask.fromBytes(shape, Uint8Array.from(bits));
const close = (a: number, b: number, tol = 1e-12, msg?: string): void => assert.ok(Math.abs(a - b) <= tol, `${msg ?? ''} ${a} vs ${b}`);

test('jaccard: exact counts on hand-built masks; empty pair is NaN; identical is 1', () => {
  const a = mask([2, 4], [1, 1, 0, 0, 1, 0, 0, 0]);
  const b = mask([2, 4], [1, 0, 1, 0, 1, 0, 0, 1]);
  assert.equal(jaccard(a, b), 2 / 5); // ∩ = {0,4}, ∪ = {0,1,2,4,7}
  assert.equal(jaccard(a, a), 1);
  assert.ok(Number.isNaN(jaccard(new BitMask([2, 4]), new BitMask([2, 4]))));
  assert.equal(jaccard(a, new BitMask([2, 4])), 0);
});

test('bernoulliJaccard is pq/(p+q−pq)', () => {
  assert.equal(bernoulliJaccard(0.5, 0.5), 0.25 / 0.75);
  close(bernoulliJaccard(0.2, 0.6), 0.12 / (0.8 - 0.12));
  assert.equal(bernoulliJaccard(1, 1), 1);
  assert.equal(bernoulliJaccard(0, 0.4), 0);
  assert.ok(Number.isNaN(bernoulliJaccard(0, 0)));
});

test('magnitude-matched expectation: Σ n_b p_b q_b over Σ n_b (p_b + q_b − p_b q_b)', () => {
  // bin 0: 10 entries, A changed 10, B changed 5; bin 1: 10 entries, A 0, B 5
  const e = magnitudeMatchedExpectation([10, 10], [10, 0], [5, 5]);
  close(e.intersection, 10 * 1 * 0.5 + 0);
  close(e.union, 10 * (1 + 0.5 - 0.5) + 10 * (0 + 0.5 - 0));
  close(magnitudeMatchedJaccard([10, 10], [10, 0], [5, 5]), 5 / 15);
  // one bin = the Bernoulli baseline
  close(magnitudeMatchedJaccard([40], [8], [24]), bernoulliJaccard(0.2, 0.6));
  // empty bins are skipped
  close(magnitudeMatchedJaccard([0, 40], [0, 8], [0, 24]), bernoulliJaccard(0.2, 0.6));
});

test('changedPerBin and binSizes count set bits per bin', () => {
  const m = mask([1, 6], [1, 0, 1, 1, 0, 1]);
  const bins = Uint8Array.from([0, 0, 1, 1, 2, 2]);
  assert.deepEqual([...changedPerBin(m, bins, 3)], [1, 2, 1]);
  assert.deepEqual([...binSizes(bins, 3)], [2, 2, 2]);
  // across a word boundary
  const big = BitMask.fromPredicate([70], (i) => i % 3 === 0);
  const b2 = Uint8Array.from({ length: 70 }, (_, i) => (i < 35 ? 0 : 1));
  assert.deepEqual([...changedPerBin(big, b2, 2)], [12, 12]);
});

test('tensorLocality: exact matrix, pair sums, means, ratios and consensus on three hand-built masks', () => {
  const A = mask([2, 3], [1, 1, 0, 0, 0, 1]);
  const B = mask([2, 3], [1, 0, 0, 0, 0, 1]);
  const C = mask([2, 3], [0, 1, 1, 0, 0, 0]);
  const bins = Uint8Array.from([0, 0, 0, 1, 1, 1]);
  const t = tensorLocality('model.layers.3.self_attn.q_proj.weight', [A, B, C], bins, 2);
  assert.equal(t.layer, 3);
  assert.equal(t.kind, 'q');
  assert.deepEqual(t.changed, [3, 2, 2]);
  assert.deepEqual(t.jaccard, [[1, 2 / 3, 1 / 4], [2 / 3, 1, 0], [1 / 4, 0, 1]]);
  close(t.meanJaccard, (2 / 3 + 1 / 4 + 0) / 3);
  const p = [0.5, 1 / 3, 1 / 3];
  const bern = (p[0]! * p[1]! / (p[0]! + p[1]! - p[0]! * p[1]!) * 2 + p[1]! * p[2]! / (p[1]! + p[2]! - p[1]! * p[2]!)) / 3;
  close(t.meanBernoulli, bern);
  close(t.ratioBernoulli, t.meanJaccard / bern);
  // per bin: A (2,1), B (1,1), C (2,0) of (3,3)
  const mm = (a: number[], b: number[]): number => magnitudeMatchedJaccard([3, 3], a, b);
  close(t.meanMagnitudeMatched, (mm([2, 1], [1, 1]) + mm([2, 1], [2, 0]) + mm([1, 1], [2, 0])) / 3);
  assert.deepEqual(t.pairs.map((x) => [x.r, x.s, x.intersection, x.union]), [[0, 1, 2, 3], [0, 2, 1, 4], [1, 2, 0, 4]]);
  assert.deepEqual(t.consensusHistogram, [2, 1, 3, 0]); // entries 3,4: no run; 2: one; 0,1,5: two
  assert.deepEqual([...consensusCounts([A, B, C])], [2, 2, 1, 0, 0, 2]);
  assert.equal(t.allRunsFraction, 0);
  close(t.allRunsExpected, 0.5 * (1 / 3) * (1 / 3));
});

test('poolLocality pools pair sums over tensors (concatenated-mask Jaccard)', () => {
  const t1 = tensorLocality('model.layers.0.mlp.up_proj.weight', [mask([1, 4], [1, 1, 0, 0]), mask([1, 4], [1, 0, 0, 0])], null, 20);
  const t2 = tensorLocality('model.layers.0.mlp.down_proj.weight', [mask([1, 4], [0, 0, 1, 1]), mask([1, 4], [0, 1, 1, 1])], null, 20);
  const g = poolLocality('layer 0', 0, 'all', [t1, t2], 2);
  // concatenated: A = 11000011, B = 10000111: ∩ = 3, ∪ = 5
  close(g.meanJaccard, 3 / 5);
  assert.deepEqual(g.density, [4 / 8, 4 / 8]);
  // Bernoulli with each tensor's own densities: t1 p=.5,q=.25; t2 p=.5,q=.75
  const inter = 4 * 0.5 * 0.25 + 4 * 0.5 * 0.75;
  const union = 4 * (0.75 - 0.125) + 4 * (1.25 - 0.375);
  close(g.meanBernoulli, inter / union);
  assert.ok(Number.isNaN(g.meanMagnitudeMatched)); // no bins given
  assert.equal(g.tensors, 2);
  assert.equal(g.numel, 8);
});

test('jaccardMatrix and meanOffDiagonal agree with pairwise jaccard', () => {
  const r = new Rng(3);
  const ms = [0, 1, 2, 3].map(() => BitMask.fromPredicate([10, 13], () => r.uniform() < 0.4));
  const J = jaccardMatrix(ms);
  let s = 0;
  for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) { assert.equal(J[i]![j], jaccard(ms[i]!, ms[j]!)); s += J[i]![j]!; }
  close(meanOffDiagonal(J), s / 6);
});

test('consensus map is the mean of masks; histogram sums to n', () => {
  const A = mask([1, 4], [1, 1, 0, 1]), B = mask([1, 4], [1, 0, 0, 1]);
  assert.deepEqual([...consensusMap([A, B])], [1, 0.5, 0, 1]);
  const h = consensusHistogram(consensusCounts([A, B]), 2);
  assert.deepEqual(h, [1, 1, 2]);
});

test('poolGrid: exact block means, edge blocks over the entries they hold, full resolution', () => {
  // 3×5 mask, pool to ≤2×2: p = 2, q = 3 → 2×2 grid
  const m = mask([3, 5], [1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1]);
  const g = poolGrid(3, 5, m, 2, 2);
  assert.deepEqual(g.pool, [2, 3]);
  assert.equal(g.rows, 2); assert.equal(g.cols, 2);
  assert.deepEqual([...g.values], [4 / 6, 2 / 4, 1 / 3, 1 / 2].map((v) => Math.fround(v)));
  const full = poolGrid(3, 5, m, 10, 10);
  assert.deepEqual(full.pool, [1, 1]);
  assert.deepEqual([...full.values], [...m.toBytes()]);
  const counts = Uint8Array.from([3, 0, 3, 0]);
  assert.deepEqual([...poolGrid(1, 4, counts, 1, 2, 1 / 3).values], [0.5, 0.5].map(Math.fround));
});

test('property: independent random masks give Jaccard ≈ the Bernoulli baseline; identical masks give 1', () => {
  const r = new Rng(11);
  for (const [p, q] of [[0.1, 0.1], [0.3, 0.6], [0.8, 0.5]] as const) {
    const n = 200_000;
    const a = BitMask.fromPredicate([n], () => r.uniform() < p);
    const b = BitMask.fromPredicate([n], () => r.uniform() < q);
    const J = jaccard(a, b);
    const E = bernoulliJaccard(a.density(), b.density());
    assert.ok(Math.abs(J - E) < 0.01, `p=${p} q=${q}: J=${J} E=${E}`);
    assert.equal(jaccard(a, a), 1);
    const t = tensorLocality('x.weight', [a, b], new Uint8Array(n), 1);
    assert.ok(Math.abs(t.ratioBernoulli - 1) < 0.03, `ratio ${t.ratioBernoulli}`);
    const same = tensorLocality('x.weight', [a, a, a], null, 20);
    assert.equal(same.meanJaccard, 1);
  }
});

test('property: runs independent given magnitude bin → ratio vs magnitude-matched ≈ 1 while ratio vs Bernoulli > 1', () => {
  const r = new Rng(5);
  const n = 100_000, nb = 20;
  const bins = Uint8Array.from({ length: n }, (_, i) => Math.floor((i * nb) / n));
  const rate = (b: number): number => 0.9 * Math.exp(-b / 4); // small-|W0| bins change far more often
  const runs = [0, 1, 2].map(() => BitMask.fromPredicate([n], (i) => r.uniform() < rate(bins[i]!)));
  const t = tensorLocality('model.layers.0.mlp.up_proj.weight', runs, bins, nb);
  assert.ok(t.ratioBernoulli > 1.3, `ratio vs Bernoulli ${t.ratioBernoulli}`);
  assert.ok(Math.abs(t.ratioMagnitudeMatched - 1) < 0.02, `ratio vs magnitude-matched ${t.ratioMagnitudeMatched}`);
});

test('consensusHistogramOf (bit-sliced) equals the per-entry histogram for R = 1..9 and odd lengths', () => {
  const r = new Rng(9);
  for (const R of [1, 2, 3, 5, 7, 8, 9]) {
    for (const n of [1, 31, 33, 200]) {
      const ms = Array.from({ length: R }, () => BitMask.fromPredicate([n], () => r.uniform() < 0.5));
      assert.deepEqual(consensusHistogramOf(ms), consensusHistogram(consensusCounts(ms), R), `R=${R} n=${n}`);
    }
  }
});

test('bf16MagnitudeProfile equals magnitudeBins + changedPerBin, with heavy ties straddling several bins', () => {
  const r = new Rng(21);
  for (const [n, distinct] of [[1000, 3], [997, 50], [5000, 4000], [64, 1]] as const) {
    const pats = Array.from({ length: distinct }, () => r.int(0x7f80)); // finite magnitudes
    const bytes = new Uint8Array(2 * n);
    for (let i = 0; i < n; i++) { const v = pats[r.int(distinct)]! | (r.uniform() < 0.5 ? 0x8000 : 0); bytes[2 * i] = v & 0xff; bytes[2 * i + 1] = v >>> 8; }
    if (n > 100) { bytes[2 * 7] = 0xc0; bytes[2 * 7 + 1] = 0x7f; } // a NaN ranks last
    const nm = n === 997 ? 9 : 3; // 9 masks: two 8-wide passes, consensus from the bit-sliced path
    const masks = Array.from({ length: nm }, (_, k) => BitMask.fromPredicate([n], () => r.uniform() < [0.2, 0.5, 0.9][k % 3]!));
    const bins = magnitudeBins(bytes, 'BF16', 20);
    const prof = bf16MagnitudeProfile(bytes, masks, 20);
    assert.deepEqual([...prof.binSize], [...binSizes(bins, 20)], `n=${n} sizes`);
    masks.forEach((m, k) => assert.deepEqual([...prof.perBin[k]!], [...changedPerBin(m, bins, 20)], `n=${n} run ${k}`));
    if (nm <= 8) assert.deepEqual(prof.consensusHistogram, consensusHistogramOf(masks));
    else assert.equal(prof.consensusHistogram, undefined);
    assert.deepEqual(tensorLocality('x.weight', masks, prof, 20).consensusHistogram, consensusHistogram(consensusCounts(masks), nm));
    // and the binade change rates agree with the per-entry accumulation
    const labels = masks.map((_, k) => `r${k}`);
    const a = newChangeRateAccumulator(nm), b = newChangeRateAccumulator(nm);
    accumulateChangeRate(a, 'q', bytes, 'BF16', masks);
    accumulateChangeRatePatterns(b, 'q', 'BF16', prof.patternTotal, prof.patternChanged);
    assert.deepEqual(finishChangeRate(b, labels), finishChangeRate(a, labels));
  }
});
