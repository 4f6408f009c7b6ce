/**
 * Golden numbers on the committed fixtures (fixtures/locality, made by its seeded
 * generate.ts): three runs from one base with shared row/column stripes + private rows, and
 * one run's four checkpoints. Also: brute-force cross-checks, sync vs worker-pass equality,
 * determinism. (The CLI end to end is in locality.cli.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { localityDocument, runLocality, runLocalityPass } from '../src/probes/locality.js';
import { dynamicsDocument, runDynamics, runDynamicsPass } from '../src/probes/dynamics.js';
import { toJson } from '../src/report/output.js';
import { fixture } from './helpers.js';

const BASE = fixture('locality', 'base');
const RUNS = ['a', 'b', 'c'].map((r) => fixture('locality', 'runs', `run-${r}`));
const CKPTS = [100, 200, 300, 400].map((s) => fixture('locality', 'dynamics', `checkpoint-${s}`));
const Q1 = 'model.layers.1.self_attn.q_proj.weight';
const close = (a: number, b: number, msg = ''): void => assert.ok(Math.abs(a - b) <= 1e-12, `${msg} ${a} vs ${b}`);

function locality() {
  const base = openCheckpoint(BASE);
  const runs = RUNS.map((r) => openCheckpoint(r));
  try { return runLocality(base, runs, { consensusFor: (n) => n === Q1, consensusMaxSize: 16 }); } finally { base.close(); runs.forEach((r) => r.close()); }
}

test('golden: locality of the three fixture runs', () => {
  const r = locality();
  assert.equal(r.tensors.length, 14);
  close(r.all.meanJaccard, 0.506234882164179, 'all J');
  close(r.all.meanBernoulli, 0.2906533965150406, 'all Bernoulli');
  close(r.all.meanMagnitudeMatched, 0.4382925572155976, 'all magnitude-matched');
  close(r.all.jaccard[0]![1]!, 0.5073005940234888);
  close(r.all.jaccard[1]![2]!, 0.5029025428551915);
  const q1 = r.tensors.find((t) => t.name === Q1)!;
  assert.deepEqual(q1.changed, [1931, 1950, 2016]);
  assert.deepEqual(q1.consensusHistogram, [1165, 976, 944, 1011]);
  close(q1.meanJaccard, 0.5090103103548441);
  close(q1.meanMagnitudeMatched, 0.44709783012191195);
  close(r.byLayer[0]!.meanJaccard, 0.4948300875253752);
  // The shared stripes show: observed overlap well above both baselines.
  assert.ok(r.all.ratioBernoulli > 1.6 && r.all.ratioMagnitudeMatched > 1.1);
  const cr = r.changeRate.groups.find((g) => g.group === 'all')!;
  assert.equal(cr.entries, 73728);
  assert.deepEqual(cr.rows.find((x) => x.binade === -7)!.changed, [9094, 9072, 8933]);
  assert.deepEqual(cr.rows.find((x) => x.binade === -5)!.changed, [845, 846, 831]);
  // consensus image of q1 pooled to 16×16 (4×4 blocks): its mean is the mean consensus
  const img = r.consensus[0]!;
  assert.deepEqual([img.grid.rows, img.grid.cols, ...img.grid.pool], [16, 16, 4, 4]);
  const meanC = img.grid.values.reduce((a, b) => a + b, 0) / 256;
  assert.ok(Math.abs(meanC - (1931 + 1950 + 2016) / 3 / 4096) < 1e-6);
});

test('brute force: q1 masks from raw bf16 bits (±0 equal) reproduce the Jaccard matrix', () => {
  const base = openCheckpoint(BASE);
  const runs = RUNS.map((r) => openCheckpoint(r));
  const b = new Uint16Array(base.readBytes(Q1).slice().buffer);
  const masks = runs.map((r) => {
    const t = new Uint16Array(r.readBytes(Q1).slice().buffer);
    return Array.from(b, (x, i) => (x !== t[i]! && ((x | t[i]!) & 0x7fff) !== 0 ? 1 : 0));
  });
  const J = (a: number[], c: number[]): number => { let i = 0, u = 0; a.forEach((v, k) => { i += v & c[k]!; u += v | c[k]!; }); return i / u; };
  const r = locality();
  const q1 = r.tensors.find((t) => t.name === Q1)!;
  for (let x = 0; x < 3; x++) for (let y = 0; y < 3; y++) if (x !== y) close(q1.jaccard[x]![y]!, J(masks[x]!, masks[y]!));
  base.close(); runs.forEach((r2) => r2.close());
});

test('worker pass (updateSparsity onMask) equals the in-process path; JSON is deterministic', async () => {
  const a = locality();
  const b = await runLocalityPass(BASE, RUNS, { threads: 2, consensusFor: (n) => n === Q1, consensusMaxSize: 16 });
  const doc = (x: typeof a): string => toJson(localityDocument({ ...x, base: 'B', runs: ['1', '2', '3'], sparsity: null, consensus: [] }, 1));
  assert.equal(doc(a), doc(b));
  assert.deepEqual([...a.consensus[0]!.grid.values], [...b.consensus[0]!.grid.values]);
  assert.ok(b.sparsity && b.sparsity.summary.length === 3);
  assert.equal(doc(a), doc(locality()));
});

test('golden: dynamics of the fixture checkpoints', async () => {
  const base = openCheckpoint(BASE);
  const cks = CKPTS.map((c) => openCheckpoint(c));
  const d = runDynamics(base, cks, [100, 200, 300, 400], { profilesFor: (n) => n === Q1 });
  base.close(); cks.forEach((c) => c.close());
  assert.deepEqual(d.heads, { headDim: 16, numHeads: 4, numKvHeads: 2 });
  const all = d.sparsityByKind[0]!;
  assert.equal(all.kind, 'all');
  assert.deepEqual(all.sparsity, [0.6353081597222222, 0.5479736328125, 0.4938422309027778, 0.4576416015625]);
  const t = d.tensors.find((x) => x.name === Q1)!;
  assert.deepEqual(t.sparsity, [0.61669921875, 0.52685546875, 0.46875, 0.438720703125]);
  assert.deepEqual(t.headBoundaries, [16, 32, 48]);
  assert.equal(t.headAxis, 'rows');
  close(t.rowStability.vsFinal[0]!, 0.7954041353995439);
  close(t.rowStability.consecutive[1]!, 0.816535563190108);
  assert.equal(t.rowStability.vsFinal[3], 1);
  assert.deepEqual(t.rowRatios![3]!.slice(0, 5), [0.78125, 0.4375, 0.421875, 0.84375, 0.4375]);
  assert.deepEqual(t.rowSmoothed![3]!.slice(0, 2), [(0.78125 + 0.4375) / 2, (0.78125 + 0.4375 + 0.421875) / 3]);
  // sparsity only falls as the random walk accumulates
  for (let k = 1; k < 4; k++) assert.ok(all.sparsity[k]! < all.sparsity[k - 1]!);
  const p = await runDynamicsPass(BASE, CKPTS, [100, 200, 300, 400], { threads: 1, profilesFor: (n) => n === Q1 });
  assert.equal(toJson(dynamicsDocument({ ...p, base: '', checkpoints: [] })), toJson(dynamicsDocument({ ...d, base: '', checkpoints: [] })));
});
