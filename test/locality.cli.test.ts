/**
 * The locality / dynamics / figure commands end to end on the committed fixtures, run as a
 * child process (runCli).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixture, tempDir, runCli } from './helpers.js';

const BASE = fixture('locality', 'base');
const RUNS = ['a', 'b', 'c'].map((r) => fixture('locality', 'runs', `run-${r}`));
const CKPTS = [100, 200, 300, 400].map((s) => fixture('locality', 'dynamics', `checkpoint-${s}`));
const Q1 = 'model.layers.1.self_attn.q_proj.weight';
const close = (a: number, b: number, msg = ''): void => assert.ok(Math.abs(a - b) <= 1e-12, `${msg} ${a} vs ${b}`);

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const r = await runCli(args);
  return { code: r.code, out: r.out };
}

test('CLI: locality, dynamics and figure write JSON, tables and PNG figures; bad input is one line, exit 2', async () => {
  const dir = tempDir();
  const loc = await cli(['locality', '--base', BASE, '--tuned', ...RUNS, '--layer', '1', '--out', path.join(dir, 'loc'), '--quiet', '--pool', '32']);
  assert.equal(loc.code, 0, loc.out);
  assert.match(loc.out, /layer 1 \(Table 2\)/);
  assert.match(loc.out, /E\|A∩B\| = Σ_b n_b p_b q_b/);
  for (const f of ['locality.json', 'sparsity.json', 'locality.layer.csv', 'figures/jaccard-all.png', 'figures/jaccard-layer1-q.png', 'figures/changerate.png',
    'figures/jaccard-layers.png', 'figures/sparsity-layers.png', 'figures/consensus-layers.1.self_attn.q_proj.png', 'figures/consensus-layers.1.self_attn.q_proj.csv']) {
    assert.ok(fs.existsSync(path.join(dir, 'loc', f)), f);
  }
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 'loc', 'locality.json'), 'utf8'));
  assert.equal(doc.kind, 'locality');
  assert.equal(doc.tableLayer, 1);
  close(doc.all.meanJaccard, 0.506234882164179);
  const dyn = await cli(['dynamics', '--base', BASE, '--checkpoints', ...CKPTS, '--out', path.join(dir, 'dyn'), '--quiet']);
  assert.equal(dyn.code, 0, dyn.out);
  assert.ok(fs.existsSync(path.join(dir, 'dyn', 'figures', 'ratios-row-layers.0.self_attn.q_proj.png')));
  assert.ok(fs.existsSync(path.join(dir, 'dyn', 'dynamics.profiles.csv')));
  const fig = await cli(['figure', 'jaccard', '--from', path.join(dir, 'loc', 'locality.json'), '--layer', '0', '--kind', 'down', '--out', path.join(dir, 'j.png')]);
  assert.equal(fig.code, 0, fig.out);
  assert.ok(fs.existsSync(path.join(dir, 'j.png')) && fs.existsSync(path.join(dir, 'j.csv')));
  const fr = await cli(['figure', 'ratios', '--from', path.join(dir, 'dyn', 'dynamics.json'), '--tensor', 'model.layers.0.self_attn.o_proj.weight', '--axis', 'col', '--out', path.join(dir, 'r.png')]);
  assert.equal(fr.code, 0, fr.out);
  const fa = await cli(['figure', 'all', '--from', path.join(dir, 'loc'), '--out', path.join(dir, 'all')]);
  assert.equal(fa.code, 0, fa.out);
  for (const f of ['jaccard-all.png', 'jaccard-layer1-q.png', 'jaccard-layers.png', 'changerate.png', 'sparsity-layers.png', 'changerate.csv']) assert.ok(fs.existsSync(path.join(dir, 'all', f)), f);
  const fm = await cli(['figure', 'mask', '--base', BASE, '--tuned', RUNS[0]!, '--tensor', Q1, '--full', '--out', path.join(dir, 'm.png')]);
  assert.equal(fm.code, 0, fm.out);

  const bad1 = await cli(['locality', '--base', BASE, '--tuned', RUNS[0]!]);
  assert.equal(bad1.code, 2);
  assert.match(bad1.out, /^rlvr-lens: .*at least two/m);
  const bad2 = await cli(['dynamics', '--base', BASE, '--checkpoints', CKPTS[1]!, CKPTS[0]!]);
  assert.equal(bad2.code, 2);
  assert.match(bad2.out, /increasing step order/);
  const bad3 = await cli(['figure', 'jaccard', '--from', path.join(dir, 'dyn', 'dynamics.json'), '--out', path.join(dir, 'x.png')]);
  assert.equal(bad3.code, 2);
  assert.match(bad3.out, /is a "dynamics" document, expected locality/);
  assert.ok(!fs.existsSync(path.join(dir, 'x.png')));
  const bad4 = await cli(['figure', 'nope', '--out', path.join(dir, 'y.png')]);
  assert.equal(bad4.code, 2);
  assert.match(bad4.out, /unknown figure type "nope"/);
  const bad5 = await cli(['locality', '--base', path.join(dir, 'missing'), '--tuned', ...RUNS]);
  assert.equal(bad5.code, 2);
  assert.equal(bad5.out.trim().split('\n').length, 1);
});
