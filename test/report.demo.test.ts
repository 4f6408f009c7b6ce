/**
 * `rlvr-lens demo` on a lab-shaped demo folder (run folders with run.json, an RL run with
 * intermediate checkpoints, an intervened base and an RL run from it), built here from the
 * locality fixtures, F's intervene() and the synthetic generator: run roles come from
 * run.json, every stage is written and the report shows each section, the intervention
 * overlap is computed against the right bases. Also the fallback demo set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { intervene } from '../src/interventions/intervene.js';
import { generateSynthetic } from '../src/synth/generate.js';
import { labDemoSet, localityDemoSet, runDemo } from '../src/report/html/demo.js';
import { fixture, tempDir } from './helpers.js';

function copyDir(src: string, dst: string): void {
  fs.mkdirSync(dst, { recursive: true });
  for (const f of fs.readdirSync(src)) {
    const s = path.join(src, f);
    if (fs.statSync(s).isFile()) fs.copyFileSync(s, path.join(dst, f));
  }
}

function labRun(root: string, name: string, from: string | null, spec: Record<string, unknown>, weights: string): void {
  const d = path.join(root, name);
  copyDir(weights, d);
  if (!fs.existsSync(path.join(d, 'config.json'))) fs.copyFileSync(fixture('locality', 'base', 'config.json'), path.join(d, 'config.json'));
  fs.writeFileSync(path.join(d, 'run.json'), JSON.stringify({ name, ...(from ? { from } : {}), ...spec }));
  fs.writeFileSync(path.join(d, 'log.jsonl'), [0, 10, 20].map((s) => JSON.stringify({ step: s, reward: s / 40 })).join('\n') + '\n');
}

test('demo on a lab-shaped set: roles, stages, intervention overlap, report sections', { timeout: 120_000 }, async () => {
  const root = tempDir('rlvr-demo-set-');
  const loc = fixture('locality');
  labRun(root, 'base', null, { kind: 'pretrain' }, path.join(loc, 'base'));
  labRun(root, 'sft', 'base', { kind: 'sft', mixture: 'add2x2', seed: 2 }, path.join(loc, 'runs', 'run-c'));
  labRun(root, 'rl-add-s1', 'base', { kind: 'rl', mixture: 'add', seed: 11, steps: 400 }, path.join(loc, 'runs', 'run-a'));
  labRun(root, 'rl-sub-s2', 'base', { kind: 'rl', mixture: 'sub', seed: 12, steps: 400 }, path.join(loc, 'runs', 'run-b'));
  for (const s of [100, 200, 300]) copyDir(path.join(loc, 'dynamics', `checkpoint-${s}`), path.join(root, 'rl-add-s1', 'checkpoints', `step-${String(s).padStart(4, '0')}`));
  // An intervened base (layer 1 V/O rotated) and an RL run from it with rl-add-s1's recipe.
  intervene({ base: path.join(root, 'base'), out: path.join(root, 'base-rotated'), rotateLayers: [1], seed: 5 });
  fs.writeFileSync(path.join(root, 'base-rotated', 'run.json'), JSON.stringify({ kind: 'intervene', name: 'base-rotated', from: 'base', seed: 5 }));
  const rot = path.join(root, 'rl-add-rotated');
  generateSynthetic({ out: rot, base: path.join(root, 'base-rotated'), seed: 3, changedFraction: 0.4 });
  fs.writeFileSync(path.join(rot, 'run.json'), JSON.stringify({ kind: 'rl', name: 'rl-add-rotated', from: 'base-rotated', mixture: 'add', seed: 11, steps: 400 }));

  const set = labDemoSet(root)!;
  assert.ok(set);
  assert.equal(path.basename(set.base), 'base');
  assert.deepEqual(set.tuned.map((t) => [t.label, t.role]), [['rl-add-s1', 'rl'], ['rl-sub-s2', 'rl'], ['sft', 'sft']]);
  // the step folders, then the run's final model at its run.json step
  assert.deepEqual(set.checkpoints.map((c) => c.step), [100, 200, 300, 400]);
  assert.equal(path.basename(set.checkpoints[3]!.path), 'rl-add-s1');
  assert.ok(set.intervention);
  assert.deepEqual(set.intervention!.rotated, [1]);
  assert.equal(path.basename(set.intervention!.reference), 'rl-add-s1');
  assert.equal(set.logs.length, 5);

  const out = process.env.RLVR_KEEP_DEMO_OUT ?? tempDir('rlvr-demo-out-');
  const r = await runDemo({ out, set, threads: 1, cacheDir: null });
  for (const f of ['sparsity.json', 'maps.json', 'locality.json', 'dynamics.json', 'intervention-overlap.json', 'manifest.json', 'report.html']) {
    assert.ok(fs.existsSync(path.join(out, f)), f);
  }
  const ids = r.set.tuned.length;
  assert.equal(ids, 3);
  const avail = (id: string): boolean => r.set && JSON.parse(fs.readFileSync(path.join(out, 'report.html'), 'utf8').split('<script id="rlvr-data" type="application/json">')[1]!.split('</script>')[0]!)
    .sections.find((s: { id: string }) => s.id === id).available;
  for (const id of ['sparsity', 'heatmaps', 'locality', 'dynamics', 'interventions', 'runlogs']) assert.ok(avail(id), id);
  // Intervention overlap: the rotated layer's V/O are flagged; every linear tensor has a finite Jaccard.
  const iv = JSON.parse(fs.readFileSync(path.join(out, 'intervention-overlap.json'), 'utf8')) as { tensors: { name: string; intervened: boolean; jaccard: number; bernoulli: number }[] };
  assert.ok(iv.tensors.some((t) => t.intervened && t.name.includes('layers.1.self_attn.v_proj')));
  assert.deepEqual(iv.tensors.filter((t) => t.intervened).map((t) => t.name).sort(), ['model.layers.1.self_attn.o_proj.weight', 'model.layers.1.self_attn.v_proj.weight']);
  assert.ok(iv.tensors.every((t) => Number.isFinite(t.jaccard) && Number.isFinite(t.bernoulli)));
  assert.ok(r.summary.some((l) => /sft\s+SFT\s+sparsity/.test(l)), r.summary.join('\n'));
});

test('fallback demo set: the locality fixtures', async () => {
  const set = localityDemoSet(fixture('locality'));
  assert.equal(set.tuned.length, 3);
  assert.ok(set.tuned.every((t) => fs.existsSync(path.join(t.path, 'model.safetensors'))));
  assert.ok(set.checkpoints.every((c) => fs.existsSync(c.path)));
  assert.equal(labDemoSet(path.join(tempDir(), 'nope')), null);
});
