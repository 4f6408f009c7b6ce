/**
 * The HTML report, Node side: the data model built from an analysis folder (Table 1 and
 * claims carry the probes' numbers), missing stages become skipped sections, bad files
 * are skipped with a note, the HTML is self-contained and deterministic, the maps pool
 * exactly, and the CLI fails cleanly on a bad folder.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BitMask } from '../src/probes/mask.js';
import { buildReportData } from '../src/report/html/build.js';
import { buildReportHtml, writeReport } from '../src/report/html/index.js';
import { loadAnalysis } from '../src/report/html/load.js';
import { MapsCollector, mapSide, poolMask } from '../src/report/html/maps.js';
import type { TableBlock } from '../src/report/html/model.js';
import { jsonForScript } from '../src/report/html/render.js';
import { guessRole, runLabel } from '../src/report/html/context.js';
import { RlvrError } from '../src/errors.js';
import { main } from '../src/cli/main.js';
import { tempDir } from './helpers.js';
import { buildSampleAnalysis } from './report.helpers.js';

const dir = tempDir('rlvr-report-');
const expected = await buildSampleAnalysis(dir, { withLogs: true });

function col(t: TableBlock, key: string): number {
  const i = t.columns.findIndex((c) => c.key === key);
  assert.ok(i >= 0, `column ${key}`);
  return i;
}

test('Table 1 and the claims carry the probes’ numbers', () => {
  const guessed = buildReportData(loadAnalysis(dir));
  assert.ok(guessed.runs.every((r) => r.role === 'other'), 'names say nothing about the family');
  const data = buildReportData(loadAnalysis(dir), { roles: { 'run-a': 'rl', 'run-b': 'rl', 'run-c': 'sft' } });
  assert.deepEqual(data.runs.map((r) => [r.label, r.role]), [['run-a', 'rl'], ['run-b', 'rl'], ['run-c', 'sft']]);
  const t1 = data.summary.table1!;
  assert.equal(t1.rows.length, 3);
  for (const row of t1.rows) {
    const want = expected.sparsity[row[0] as string]!;
    assert.ok(Math.abs((row[col(t1, 'sparsity')] as number) - want) < 1e-5, `${row[0]}: ${row[col(t1, 'sparsity')]} vs ${want}`);
  }
  // Consistency is claimed for RL runs: with run-c marked SFT, only the run-a/run-b pair counts.
  const consistent = data.summary.claims.find((c) => c.id === 'consistent')!;
  assert.equal(consistent.available, true);
  const rlOnly = consistent.table!.rows[0]!;
  assert.equal(rlOnly[0], 'all tensors');
  assert.ok(Math.abs((rlOnly[col(consistent.table!, 'jaccard')] as number) - expected.jaccardAB) < 1e-4, `${rlOnly[2]} vs ${expected.jaccardAB}`);
  assert.match(consistent.table!.caption!, /RL runs only \(run-a, run-b\): 1 pair\(s\)/);
  const allRuns = guessed.summary.claims.find((c) => c.id === 'consistent')!.table!.rows[0]!;
  assert.ok(Math.abs((allRuns[col(consistent.table!, 'jaccard')] as number) - expected.meanJaccard) < 1e-4);
  // The SFT baseline of the sparse claim is the SFT model's sparsity.
  const sparse = data.summary.claims.find((c) => c.id === 'sparse')!.table!;
  assert.ok(Math.abs((sparse.rows[0]![col(sparse, 'sft')] as number) - expected.sparsity['run-c']!) < 1e-5);
  // The principal claim shows the probe's pooled overlaps.
  const off = data.summary.claims.find((c) => c.id === 'off-principal')!.table!;
  for (const r of off.rows) assert.equal(r[col(off, 'obs')], Number(expected.principalOverlap[r[0] as string]!.toPrecision(4)));
  for (const id of ['sparsity', 'heatmaps', 'locality', 'change-rate', 'spectrum', 'principal', 'bounds', 'dynamics', 'runlogs', 'tables', 'provenance']) {
    assert.equal(data.sections.find((s) => s.id === id)?.available, true, id);
  }
  // Stages without data are listed as skipped with a reason, never silently absent.
  const iv = data.sections.find((s) => s.id === 'interventions')!;
  assert.equal(iv.available, false);
  assert.match(iv.note!, /intervention-overlap\.json/);
  // Every linear tensor has a heatmap for every run.
  const hm = data.sections.find((s) => s.id === 'heatmaps')!.blocks[0]!;
  assert.equal(hm.type, 'heatmap');
  if (hm.type === 'heatmap') {
    assert.deepEqual(Object.keys(hm.tensors).sort(), [...expected.linearTensors].sort());
    for (const t of Object.values(hm.tensors)) assert.deepEqual(Object.keys(t.runs), ['run-a', 'run-b', 'run-c']);
  }
  assert.ok(data.sections.find((s) => s.id === 'runlogs')!.available);
  const merged = data.sections.find((s) => s.id === 'tables')!;
  assert.ok(merged.available);
});

test('report.html is self-contained, CSP-locked and byte-deterministic', async () => {
  const a = await buildReportHtml(dir);
  const b = await buildReportHtml(dir);
  assert.equal(a.html, b.html);
  assert.match(a.html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-/);
  // No external resource references: no src/href attributes pointing anywhere, no @import / url(.
  assert.doesNotMatch(a.html, /\s(src|href)\s*=\s*["']?(https?:|\/\/)/i);
  assert.doesNotMatch(a.html, /@import|url\(\s*["']?https?:/i);
  assert.equal((a.html.match(/<script/g) ?? []).length, 2, 'one data element, one script');
  const r = await writeReport(dir);
  assert.equal(fs.readFileSync(r.path, 'utf8'), a.html);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp-')), [], 'no temp files left');
});

test('jsonForScript cannot end its script element', () => {
  const s = jsonForScript({ a: '</script><script>alert(1)</script>', b: NaN, c: '\u2028' });
  assert.doesNotMatch(s, /<\/script/i);
  assert.deepEqual(JSON.parse(s), { a: '</script><script>alert(1)</script>', b: null, c: '\u2028' });
});

test('a bad or foreign data file is skipped with a note; a missing stage is skipped', async () => {
  const d = tempDir('rlvr-report-bad-');
  await buildSampleAnalysis(d, { withDynamics: false });
  fs.writeFileSync(path.join(d, 'spectrum.json'), '{"tool":"rlvr-lens","kind":"spectrum", broken');
  fs.writeFileSync(path.join(d, 'other.json'), '{"hello":1}');
  const { data, problems } = await buildReportHtml(d);
  assert.ok(problems.some((p) => p.startsWith('spectrum.json: not valid JSON')));
  assert.ok(problems.some((p) => p.startsWith('other.json: not an rlvr-lens data file')));
  assert.equal(data.sections.find((s) => s.id === 'dynamics')!.available, false);
  assert.ok(data.summary.notes.some((n) => n.includes('spectrum.json')));
});

test('an unknown stage kind is shown by the generic view; malformed fields are ignored, not fatal', () => {
  const d = tempDir('rlvr-report-gen-');
  fs.writeFileSync(path.join(d, 'future.json'), JSON.stringify({ tool: 'rlvr-lens', version: '9', schema: 9, kind: 'future', params: { x: 1 }, rows: [{ name: 'a', v: 1.5 }, { name: 'b', v: 2 }] }));
  // A locality file whose tensors are not a list: the dedicated view cannot read it.
  fs.writeFileSync(path.join(d, 'locality.json'), JSON.stringify({ tool: 'rlvr-lens', version: '9', schema: 9, kind: 'locality', runs: 'oops', tensors: [{ name: 'x', jaccard: 'bad' }] }));
  const data = buildReportData(loadAnalysis(d));
  const fut = data.sections.find((s) => s.id === 'data-future')!;
  const t = fut.blocks.find((b) => b.type === 'table') as TableBlock;
  assert.deepEqual(t.rows, [['a', 1.5], ['b', 2]]);
  const loc = data.sections.find((s) => s.id === 'locality')!;
  assert.equal(loc.available, true);
  const fig = loc.blocks.find((b) => b.type === 'figure' && b.id === 'jaccard-tensor');
  assert.ok(fig && fig.type === 'figure' && Object.keys(fig.figures).length === 0, 'a non-matrix jaccard is not drawn');
  assert.ok(data.tensors.some((t) => t.name === 'x'));
});

test('maps: exact block means, quantised; the budget sets the side', () => {
  // 4×6 mask, pooled to side 2 → blocks of 2×3.
  const mask = new BitMask([4, 6]);
  for (const i of [0, 1, 2, 6, 7, 8, 3, 22, 23]) mask.set(i);
  const p = poolMask(mask, 2);
  assert.deepEqual(p.size, [2, 2]);
  assert.deepEqual(p.pool, [2, 3]);
  // block (0,0): rows 0-1, cols 0-2 all set = 6/6; (0,1): only entry 3 → 1/6; (1,0): 0; (1,1): 22, 23 → 2/6
  assert.deepEqual([...p.bytes], [255, Math.round(255 / 6), 0, Math.round(510 / 6)]);
  assert.equal(mapSide(196, 5, { budgetBytes: 6 * 1024 * 1024, maxSide: 256 }), Math.floor(Math.sqrt(6 * 1024 * 1024 / 980)));
  assert.equal(mapSide(1, 1, { budgetBytes: 1 << 30, maxSide: 256 }), 256);
  assert.equal(mapSide(10000, 10, { budgetBytes: 1024, maxSide: 256 }), 32);
  const c = new MapsCollector(['a', 'b'], 1, { budgetBytes: 1 << 20, maxSide: 64 });
  c.add('model.layers.0.self_attn.o_proj.weight', [mask, new BitMask([4, 6])], 3);
  const doc = c.finish();
  const t = doc.tensors['model.layers.0.self_attn.o_proj.weight']!;
  assert.deepEqual(t.pool, [1, 1]);
  assert.equal(t.headAxis, 'cols');
  assert.deepEqual([...Buffer.from(t.runs.a!, 'base64')].filter((v) => v === 255).length, 9);
  assert.throws(() => c.add('x', [mask], 3), RangeError);
});

test('run labels and roles from names', () => {
  assert.equal(runLabel('/a/b/run-a/'), 'run-a');
  assert.equal(runLabel('out/sft/model.safetensors'), 'sft');
  assert.equal(guessRole('ckpt/qwen-sft'), 'sft');
  assert.equal(guessRole('ckpt/qwen-grpo-math'), 'rl');
  assert.equal(guessRole('ckpt/rl-seed1'), 'rl');
  assert.equal(guessRole('ckpt/base-tuned'), 'other');
});

test('rlvr-lens report: missing or empty folder → one line, exit 2, nothing written', async () => {
  const errs: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  (process.stderr as { write: unknown }).write = (s: string): boolean => { errs.push(String(s)); return true; };
  const empty = tempDir('rlvr-report-empty-');
  let c1: number, c2: number;
  try {
    c1 = await main(['node', 'rlvr-lens', 'report', path.join(empty, 'nope')]);
    c2 = await main(['node', 'rlvr-lens', 'report', empty]);
  } finally {
    (process.stderr as { write: unknown }).write = orig;
  }
  assert.equal(c1, 2);
  assert.equal(c2, 2);
  assert.equal(errs.length, 2);
  assert.match(errs[0]!, /^rlvr-lens: .*nope: cannot read analysis folder: no such file or folder\n$/);
  assert.match(errs[1]!, /no rlvr-lens data files here/);
  assert.deepEqual(fs.readdirSync(empty), []);
  await assert.rejects(writeReport(empty), RlvrError);
});

test('spectrum and principal views: claims pooled by changed counts, curves per tensor, tolerant field names', () => {
  const d = tempDir('rlvr-report-spec-');
  const env = (kind: string, body: object): string => JSON.stringify({ tool: 'rlvr-lens', version: '0.1.0', schema: 1, kind, ...body });
  const q = 'model.layers.0.self_attn.q_proj.weight', up = 'model.layers.1.mlp.up_proj.weight';
  fs.writeFileSync(path.join(d, 'principal.json'), env('principal', {
    params: { k: 64, alpha: 0.5 },
    inputs: { tuned: [{ spec: 'ck/rl-a' }, { spec: 'ck/sft' }] },
    tensors: [
      { name: q, layer: 0, kind: 'q', shape: [8, 8], princDensity: 0.5, results: [
        { changed: 100, overlapPrinc: 0.3, magnitudeMatchedPrinc: 0.35, overlapLow: 0.7 },
        { changed: 60, overlapPrinc: 0.5, magnitudeMatchedPrinc: 0.5, overlapLow: 0.5 }] },
      { name: up, layer: 1, kind: 'up', shape: [16, 8], princDensity: 0.5, results: [
        { changed: 300, overlapPrinc: 0.4, magnitudeMatchedPrinc: 0.42, overlapLow: 0.6 }, null] },
    ],
  }));
  fs.writeFileSync(path.join(d, 'spectrum.json'), env('spectrum', {
    params: { k: 3 },
    tuned: ['ck/rl-a', 'ck/sft'],
    tensors: [
      { name: q, layer: 0, kind: 'q', shape: [8, 8], baseSingularValues: [3, 2, 1], results: [
        { angles: { u: [0.1, 0.2, 0.5], v: [0.1, 0.3, 0.4] }, nss: 0.001, singularValues: [3.001, 2, 1] },
        { angles: { u: [5, 10, 20], v: [4, 8, 30] }, nss: 0.05 }] },
    ],
  }));
  const data = buildReportData(loadAnalysis(d));
  assert.deepEqual(data.runs.map((r) => [r.label, r.role]), [['rl-a', 'rl'], ['sft', 'sft']]);
  const off = data.summary.claims.find((c) => c.id === 'off-principal')!;
  const t = off.table!;
  const rl = t.rows.find((r) => r[0] === 'rl-a')!;
  assert.equal(rl[col(t, 'obs')], (0.3 * 100 + 0.4 * 300) / 400);
  assert.equal(rl[col(t, 'rand')], 0.5);
  assert.equal(rl[col(t, 'mm')], (0.35 * 100 + 0.42 * 300) / 400);
  const low = data.summary.claims.find((c) => c.id === 'low-magnitude')!.table!;
  assert.equal(low.rows.find((r) => r[0] === 'rl-a')![col(low, 'obs')], (0.7 * 100 + 0.6 * 300) / 400);
  const spec = data.summary.claims.find((c) => c.id === 'spectrum-preserving')!.table!;
  const srl = spec.rows.find((r) => r[0] === 'rl-a')!;
  assert.equal(srl[col(spec, 'meanMax')], 0.5);
  assert.equal(srl[col(spec, 'sftMax')], 30, 'the SFT baseline column');
  const s = data.sections.find((x) => x.id === 'spectrum')!;
  const angles = s.blocks.find((b) => b.type === 'figure' && b.id === 'angles');
  assert.ok(angles && angles.type === 'figure');
  const fig = angles.figures[q]!;
  assert.equal(fig.type, 'line');
  if (fig.type === 'line') assert.deepEqual(fig.series.map((x) => x.name), ['rl-a U (left)', 'rl-a V (right)', 'sft U (left)', 'sft V (right)']);
  const sv = s.blocks.find((b) => b.type === 'figure' && b.id === 'sv');
  assert.ok(sv && sv.type === 'figure' && sv.figures[q]!.type === 'line');
  if (sv && sv.type === 'figure' && sv.figures[q]!.type === 'line') assert.deepEqual(sv.figures[q]!.series.map((x) => x.name), ['base W0', 'rl-a']);
  const bars = data.sections.find((x) => x.id === 'principal')!.blocks[0]!;
  assert.ok(bars.type === 'figure' && bars.bind === 'run' && bars.figures['rl-a']!.type === 'bar');
});

test('principal view reads overlap counts (entries, reference, changed, overlap, magnitudeMatched) and pools them exactly', () => {
  const d = tempDir('rlvr-report-counts-');
  const c = (entries: number, reference: number, changed: number, overlap: number, magnitudeMatched: number): object => ({ entries, reference, changed, overlap, magnitudeMatched });
  fs.writeFileSync(path.join(d, 'principal.json'), JSON.stringify({ tool: 'rlvr-lens', version: '0.1.0', schema: 1, kind: 'principal',
    params: { k: 4, alpha: 0.5 }, inputs: { tuned: [{ spec: 'x/rl' }] },
    tensors: [
      { name: 'model.layers.0.mlp.up_proj.weight', layer: 0, kind: 'up', shape: [8, 8], results: [{ princ: c(64, 32, 10, 3, 4), low: c(64, 32, 10, 7, 6), princNotLow: c(64, 20, 10, 1, 2) }] },
      { name: 'model.layers.1.mlp.up_proj.weight', layer: 1, kind: 'up', shape: [8, 16], results: [{ princ: c(128, 64, 30, 12, 13), low: c(128, 64, 30, 20, 18), princNotLow: c(128, 40, 30, 5, 6) }] },
    ] }));
  const data = buildReportData(loadAnalysis(d));
  const t = data.summary.claims.find((x) => x.id === 'off-principal')!.table!;
  const row = t.rows[0]!;
  assert.equal(row[col(t, 'obs')], (3 + 12) / 40);
  assert.equal(row[col(t, 'rand')], 0.5);
  assert.equal(row[col(t, 'mm')], (4 + 13) / 40);
  const low = data.summary.claims.find((x) => x.id === 'low-magnitude')!.table!;
  assert.equal(low.rows[0]![col(low, 'obs')], (7 + 20) / 40);
  const bars = data.sections.find((x) => x.id === 'principal')!.blocks[0]!;
  assert.ok(bars.type === 'figure');
  const f = bars.figures['rl']!;
  assert.ok(f.type === 'bar');
  if (f.type === 'bar') assert.deepEqual(f.series.find((s) => s.name === 'M_princ ∧ ¬M_low')!.values, [0.1, round4(5 / 30)]);
});

function round4(x: number): number { return Number(x.toPrecision(4)); }
