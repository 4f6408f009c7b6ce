import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type PgToken, groupAdvantages, klRow, policyLoss } from '../src/lab/rl.js';

const close = (a: number, b: number, tol = 1e-12): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// Hand-computed batch: ratios 1.5, 0.5 (A = +1) and 0.5, 1.1, 1.0 (A = −1), clip [0.8, 1.28].
//  t0: r=1.5, A=+1: max(−1.5, −1.28) = −1.28 → clipped, no gradient
//  t1: r=0.5, A=+1: max(−0.5, −0.8)  = −0.5  → dℓ/dlogp = −A·r = −0.5
//  t2: r=0.5, A=−1: max(0.5, 0.8)    = 0.8   → clipped, no gradient
//  t3: r=1.1, A=−1: max(1.1, 1.1)    = 1.1   → inside the range: dℓ/dlogp = 1.1
//  t4: r=1.0, A=−1: 1.0                      → dℓ/dlogp = 1.0
function batch(): PgToken[] {
  const old = -1.2;
  return [
    { seq: 0, logp: old + Math.log(1.5), oldLogp: old, refLogp: 0, adv: 1 },
    { seq: 0, logp: old + Math.log(0.5), oldLogp: old, refLogp: 0, adv: 1 },
    { seq: 1, logp: old + Math.log(0.5), oldLogp: old, refLogp: 0, adv: -1 },
    { seq: 1, logp: old + Math.log(1.1), oldLogp: old, refLogp: 0, adv: -1 },
    { seq: 1, logp: old, oldLogp: old, refLogp: 0, adv: -1 },
  ];
}

test('DAPO token-mean clipped surrogate on a hand-computed batch', () => {
  const r = policyLoss(batch(), { clipLow: 0.2, clipHigh: 0.28, klCoef: 0, lossAgg: 'token-mean' }, [2, 3], 2);
  close(r.loss, (-1.28 - 0.5 + 0.8 + 1.1 + 1.0) / 5);
  const want = [0, -0.5 / 5, 0, 1.1 / 5, 1.0 / 5];
  want.forEach((w, i) => close(r.dlogp[i]!, w));
  close(r.clipFrac, 2 / 5);
});

test('GRPO seq-mean-token-mean weights each sequence equally', () => {
  const r = policyLoss(batch(), { clipLow: 0.2, clipHigh: 0.28, klCoef: 0, lossAgg: 'seq-mean-token-mean' }, [2, 3], 2);
  close(r.loss, 0.25 * (-1.28 - 0.5) + (1 / 6) * (0.8 + 1.1 + 1.0));
  const want = [0, -0.5 * 0.25, 0, 1.1 / 6, 1.0 / 6];
  want.forEach((w, i) => close(r.dlogp[i]!, w));
});

test('symmetric clip (GRPO 0.2/0.2) clips r = 1.25 with positive advantage', () => {
  const t: PgToken[] = [{ seq: 0, logp: Math.log(1.25), oldLogp: 0, refLogp: 0, adv: 2 }];
  const r = policyLoss(t, { clipLow: 0.2, clipHigh: 0.2, klCoef: 0, lossAgg: 'token-mean' }, [1], 1);
  close(r.loss, -2 * 1.2);
  close(r.dlogp[0]!, 0);
});

test('k3 KL penalty value and gradient', () => {
  // logp = ln 0.5, ref = ln 0.25: d = ref − logp = ln 0.5; k3 = e^d − d − 1; ∂/∂logp = β(1 − e^d)
  const t: PgToken[] = [{ seq: 0, logp: Math.log(0.5), oldLogp: Math.log(0.5), refLogp: Math.log(0.25), adv: 0 }];
  const r = policyLoss(t, { clipLow: 0.2, clipHigh: 0.28, klCoef: 0.1, lossAgg: 'token-mean' }, [1], 1);
  close(r.loss, 0.1 * (0.5 - Math.log(0.5) - 1));
  close(r.dlogp[0]!, 0.1 * 0.5);
});

test('group advantages: unbiased std, all-equal groups get zero', () => {
  const a = groupAdvantages([1, 0, 0, 0, 1, 1, 1, 1], 4);
  const s = 0.5 + 1e-6;
  [0.75 / s, -0.25 / s, -0.25 / s, -0.25 / s, 0, 0, 0, 0].forEach((w, i) => close(a[i]!, w));
});

test('exact KL over the vocabulary: zero for equal rows, matches the definition', () => {
  const p = Float64Array.from([0.5, 0.25, 0.25].map(Math.log));
  const q = Float64Array.from([0.25, 0.25, 0.5].map(Math.log));
  close(klRow(p, p, 3), 0);
  close(klRow(p, q, 3), 0.5 * Math.log(2) + 0 + 0.25 * Math.log(0.5));
  close(klRow(q, p, 3), 0.25 * Math.log(0.5) + 0 + 0.5 * Math.log(2));
});
