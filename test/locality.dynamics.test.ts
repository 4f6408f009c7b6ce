/** Dynamics helpers (moving average, Spearman, steps, head boundaries) and the change rate per binade, exact cases. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { numberToBf16 } from '../src/io/dtype.js';
import { BitMask } from '../src/probes/mask.js';
import { accumulateChangeRate, binadeSlots, finishChangeRate, newChangeRateAccumulator } from '../src/probes/changerate.js';
import { averageRanks, headBoundaries, movingAverage3, parseStep, resolveSteps, spearman, topOverlap } from '../src/probes/dynamics.js';
import { UsageError } from '../src/errors.js';

test('movingAverage3: centered window 3, ends average the two available points', () => {
  assert.deepEqual([...movingAverage3([1, 2, 3, 4])], [1.5, 2, 3, 3.5]);
  assert.deepEqual([...movingAverage3([0, 3, 0, 3, 0])], [1.5, 1, 2, 1, 1.5]);
  assert.deepEqual([...movingAverage3([7])], [7]);
  assert.deepEqual([...movingAverage3([2, 4])], [3, 3]);
  assert.deepEqual([...movingAverage3([])], []);
});

test('spearman: exact values, ties by average rank, constant → NaN', () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.deepEqual([...averageRanks([5, 6, 7, 8, 7])], [1, 2, 3.5, 5, 3.5]);
  // ranks b = [1,2,3.5,5,3.5]: Σ(xa·xb) = 8, Σxa² = 10, Σxb² = 9.5
  assert.equal(spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 8 / Math.sqrt(95));
  assert.ok(Number.isNaN(spearman([1, 2, 3], [2, 2, 2])));
  assert.ok(Number.isNaN(spearman([1], [1])));
  assert.throws(() => spearman([1, 2], [1]), RangeError);
});

test('topOverlap: top-10% index sets, ties broken by index', () => {
  const a = Array.from({ length: 20 }, (_, i) => i); // top 2: 19, 18
  assert.equal(topOverlap(a, a), 1);
  assert.equal(topOverlap(a, a.map((v) => -v)), 0);
  assert.equal(topOverlap(a, a.map((v) => (v === 19 ? 100 : v === 0 ? 50 : v))), 0.5);
});

test('parseStep reads checkpoint-100, step_100, global_step100; resolveSteps checks order and count', () => {
  assert.equal(parseStep('/runs/x/checkpoint-100'), 100);
  assert.equal(parseStep('out/step_250/'), 250);
  assert.equal(parseStep('global_step1200'), 1200);
  assert.equal(parseStep('ckpt/checkpoint-40/model.safetensors'), 40);
  assert.equal(parseStep('/data/final-model'), null);
  assert.deepEqual(resolveSteps(['a/checkpoint-1', 'a/checkpoint-20']), [1, 20]);
  assert.deepEqual(resolveSteps(['x', 'y'], [5, 6]), [5, 6]);
  assert.throws(() => resolveSteps(['a/checkpoint-20', 'a/checkpoint-10']), (e: unknown) => e instanceof UsageError && /increasing step order/.test(e.message));
  assert.throws(() => resolveSteps(['final']), (e: unknown) => e instanceof UsageError && /--steps/.test(e.message));
  assert.throws(() => resolveSteps(['x', 'y'], [1]), UsageError);
});

test('headBoundaries: rows of q/k/v, columns of o, none for MLP or without a layout', () => {
  const L = { numLayers: 2, hiddenSize: 64, numHeads: 4, numKvHeads: 2, headDim: 16, nRep: 2 };
  assert.deepEqual(headBoundaries('q', [64, 64], L), { axis: 'rows', at: [16, 32, 48] });
  assert.deepEqual(headBoundaries('k', [32, 64], L), { axis: 'rows', at: [16] });
  assert.deepEqual(headBoundaries('o', [64, 64], L), { axis: 'cols', at: [16, 32, 48] });
  assert.deepEqual(headBoundaries('up', [128, 64], L), { axis: null, at: [] });
  assert.deepEqual(headBoundaries('q', [64, 64], null), { axis: null, at: [] });
});

function bf16Bytes(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((v, i) => { const b = Number.isNaN(v) ? 0x7fc0 : numberToBf16(v); out[2 * i] = b & 0xff; out[2 * i + 1] = b >>> 8; });
  return out;
}

test('binadeSlots and change rate per binade: exact counts on hand-built bf16 values', () => {
  // binades: 1, 1.5 → 0; -3 → 1; 0.25, 0.3 → -2; -0.2 → -3; 0 → its own row; NaN → excluded
  const vals = [1, 1.5, -3, 0.25, 0, 0.3, NaN, -0.2];
  const bytes = bf16Bytes(vals);
  const slots = binadeSlots(bytes, 'BF16');
  assert.equal(slots[6], -1); // NaN excluded
  const f32 = new Uint8Array(new Float32Array(vals).buffer);
  assert.deepEqual([...binadeSlots(f32, 'F32')], [...slots]);
  const m1 = BitMask.fromBytes([8], Uint8Array.from([1, 0, 1, 1, 1, 0, 1, 1]));
  const m2 = BitMask.fromBytes([8], Uint8Array.from([0, 0, 0, 1, 0, 1, 0, 1]));
  const acc = newChangeRateAccumulator(2);
  accumulateChangeRate(acc, 'q', bytes, 'BF16', [m1, m2]);
  const r = finishChangeRate(acc, ['r1', 'r2']);
  assert.deepEqual(r.groups.map((g) => g.group), ['all', 'q']);
  const all = r.groups[0]!;
  assert.equal(all.nonFinite, 1);
  assert.equal(all.entries, 7);
  // rows: zero; -3 (0.2 → 2^-3); -2 (0.25, 0.3); 0 (1, 1.5); 1 (3)
  assert.deepEqual(all.rows.map((x) => [x.label, x.entries, ...x.changed]), [
    ['0', 1, 1, 0],
    ['2^-3', 1, 1, 1],
    ['2^-2', 2, 1, 2],
    ['2^0', 2, 1, 0],
    ['2^1', 1, 1, 0],
  ]);
  assert.deepEqual(all.rows[2]!.rate, [0.5, 1]);
});
