/**
 * The geometry pass end to end on the committed fixtures (fixtures/geometry, seeded generator
 * generate.ts): golden outputs, determinism, the decomposition cache (hits, corrupt entries),
 * shard + merge byte-identical to one run, analyze's manifest, CLI errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RlvrError, UsageError } from '../src/errors.js';
import { geometryOptions } from '../src/cli/commands/spectrum.js';
import { toJson } from '../src/report/output.js';
import { analyze } from '../src/run/analyze.js';
import { runGeometry } from '../src/run/geometry.js';
import { mergeOutputs } from '../src/run/merge.js';
import { fixture, repoRoot, tempDir } from './helpers.js';

const BASE = fixture('geometry', 'base'), RL = fixture('geometry', 'rl'), SFT = fixture('geometry', 'sft');
const Q0 = 'model.layers.0.self_attn.q_proj.weight', K1 = 'model.layers.1.self_attn.k_proj.weight';

function rel(p: string): string { return path.relative(process.cwd(), p) || '.'; }

/** Deep compare: integers exactly, other numbers within 1e-4 relative (+1e-6 absolute), paths ignored. */
function assertClose(a: unknown, b: unknown, at = '$'): void {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isInteger(a) && Number.isInteger(b)) { assert.equal(a, b, at); return; }
    assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(Math.abs(a), Math.abs(b)) + 1e-6, `${at}: ${a} vs ${b}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) { assert.equal(a.length, b.length, at); a.forEach((x, i) => assertClose(x, b[i], `${at}[${i}]`)); return; }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).filter((k) => k !== 'path' && k !== 'spec'), kb = Object.keys(b).filter((k) => k !== 'path' && k !== 'spec');
    assert.deepEqual(ka, kb, at);
    for (const k of ka) assertClose((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
    return;
  }
  assert.equal(a, b, at);
}

test('golden: spectrum, principal and bounds on the committed fixtures', async () => {
  const prev = process.cwd();
  process.chdir(repoRoot());
  try {
    const r = await runGeometry(rel(BASE), [rel(RL), rel(SFT)], { k: 8, cacheDir: null });
    for (const [kind, doc] of [['spectrum', r.spectrum], ['principal', r.principal], ['bounds', r.bounds]] as const) {
      const golden = JSON.parse(fs.readFileSync(fixture('geometry', 'golden', `${kind}.json`), 'utf8')) as unknown;
      assertClose(JSON.parse(toJson(doc)), golden, kind);
    }
    const s = r.spectrum!, p = r.principal!;
    // bit-identical tensor: exact zeros, no solve, nothing changed
    const q0 = s.tensors.find((t) => t.name === Q0)!.results[0]!;
    assert.equal(q0.identical, true);
    assert.equal(q0.maxAngle, 0); assert.equal(q0.nss, 0); assert.equal(q0.solve, null);
    assert.equal(p.tensors.find((t) => t.name === Q0)!.results[0]!.changed, 0);
    // missing tensor in sft: null result, listed
    assert.equal(s.tensors.find((t) => t.name === K1)!.results[1], null);
    assert.deepEqual(s.skipped[1]!.missing, [K1]);
    // exact counts: floor(α·n) principal and low entries per tensor
    for (const t of p.tensors) { assert.equal(t.counts.principal, Math.floor(t.entries / 2)); assert.equal(t.counts.low, Math.floor(t.entries / 2)); }
    // the fixtures' story: SFT rotates far more than RL; RL's overlap with M_princ is sub-random but magnitude-matched
    assert.ok(s.summary[1]!.all.meanMaxAngle > 5 * s.summary[0]!.all.meanMaxAngle);
    const rl = p.summary[0]!.all.masks.principal;
    assert.ok(rl.overlap! < 0.4 && Math.abs(rl.overlap! - rl.magnitudeMatched!) < 0.01);
    for (const b of r.bounds!.summary) for (const c of Object.values(b.checks)) assert.equal(c.violated, 0);
    // deterministic
    const again = await runGeometry(rel(BASE), [rel(RL), rel(SFT)], { k: 8, cacheDir: null, want: { principal: false, bounds: false } });
    assert.equal(toJson(again.spectrum), toJson(s));
  } finally { process.chdir(prev); }
});

test('cache: misses then hits, same bytes as --no-cache; a corrupt entry is ignored and rewritten', async () => {
  const dir = tempDir();
  const opts = { k: 6, layers: [1], want: { principal: false, bounds: false } };
  const none = await runGeometry(BASE, [RL], { ...opts, cacheDir: null });
  const first = await runGeometry(BASE, [RL], { ...opts, cacheDir: dir });
  assert.equal(first.cache.misses, 7); assert.equal(first.cache.writes, 7); assert.equal(first.cache.hits, 0);
  const second = await runGeometry(BASE, [RL], { ...opts, cacheDir: dir });
  assert.equal(second.cache.hits, 7); assert.equal(second.cache.writes, 0);
  assert.equal(toJson(first.spectrum), toJson(none.spectrum));
  assert.equal(toJson(second.spectrum), toJson(none.spectrum));
  // corrupt one entry (flip a payload byte) and truncate another
  const files = fs.readdirSync(path.join(dir, 'svd'), { recursive: true }).map(String).filter((f) => f.endsWith('.bin')).sort();
  assert.equal(files.length, 7);
  const f0 = path.join(dir, 'svd', files[0]!), f1 = path.join(dir, 'svd', files[1]!);
  const b = fs.readFileSync(f0); b[b.length - 3] ^= 0xff; fs.writeFileSync(f0, b);
  fs.truncateSync(f1, 20);
  const third = await runGeometry(BASE, [RL], { ...opts, cacheDir: dir });
  assert.equal(third.cache.corrupt, 2); assert.equal(third.cache.hits, 5); assert.equal(third.cache.writes, 2);
  assert.equal(toJson(third.spectrum), toJson(none.spectrum));
  const fourth = await runGeometry(BASE, [RL], { ...opts, cacheDir: dir });
  assert.equal(fourth.cache.hits, 7);
  // a different k is a different key
  const k5 = await runGeometry(BASE, [RL], { ...opts, k: 5, cacheDir: dir });
  assert.equal(k5.cache.hits, 0);
});

test('analyze: stages + manifest; --shard i/N outputs merge into exactly what one run writes', async () => {
  const dir = tempDir();
  const mine = ['sparsity', 'spectrum', 'principal', 'bounds'];
  const o = { k: 6, layers: '1', cacheDir: null, stages: mine };
  const one = await analyze(BASE, [RL, SFT], path.join(dir, 'one'), o);
  assert.deepEqual(one.stages.filter((s) => mine.includes(s.name)).map((s) => s.name), mine);
  for (const s of one.stages) assert.equal(s.skipped === null, mine.includes(s.name), s.name);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'one', 'manifest.json'), 'utf8')) as { kind: string; files: string[]; inputs: { base: { fingerprint: string; dtypes: Record<string, number> } }; params: { k: number; shard: null } };
  assert.equal(manifest.kind, 'manifest');
  assert.deepEqual(manifest.files, one.files);
  assert.equal(manifest.params.k, 6);
  assert.match(manifest.inputs.base.fingerprint, /^[0-9a-f]{64}$/);
  assert.deepEqual(manifest.inputs.base.dtypes, { BF16: 18 });
  for (const i of [0, 1, 2]) await analyze(BASE, [RL, SFT], path.join(dir, `s${i}`), { ...o, shard: { index: i, count: 3 } });
  const shard0 = JSON.parse(fs.readFileSync(path.join(dir, 's0', 'spectrum.json'), 'utf8')) as { tensors: unknown[] };
  assert.ok(shard0.tensors.length > 0 && shard0.tensors.length < 7);
  const m = mergeOutputs([0, 1, 2].map((i) => path.join(dir, `s${i}`)), path.join(dir, 'merged'));
  assert.deepEqual(m.skipped, []);
  assert.deepEqual([...m.written, 'manifest.json'].filter((f, i, a) => a.indexOf(f) === i).sort(), one.files);
  for (const f of one.files) assert.ok(fs.readFileSync(path.join(dir, 'merged', f)).equals(fs.readFileSync(path.join(dir, 'one', f))), `${f} differs after merge`);
  // a missing shard is an error, nothing written
  assert.throws(() => mergeOutputs([path.join(dir, 's0'), path.join(dir, 's1')], path.join(dir, 'bad')), /shards missing/);
  assert.equal(fs.existsSync(path.join(dir, 'bad')), false);
  // the CLI also ends merged analyze shards with the report one run would have written
  const c = await cli(['merge', ...[0, 1, 2].map((i) => path.join(dir, `s${i}`)), '--out', path.join(dir, 'merged-cli')]);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, /report: .*report\.html/);
  assert.match(fs.readFileSync(path.join(dir, 'merged-cli', 'report.html'), 'utf8'), /^<!doctype html>/i);
});

/** The CLI in a child process (dist/ when the tests run from dist/, else the sources via tsx):
 *  capturing process.stdout in-process would swallow the test runner's own reports. */
function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const fromTs = fileURLToPath(import.meta.url).endsWith('.ts');
  const cmd = fromTs ? ['--import', 'tsx', path.join(repoRoot(), 'src', 'cli', 'main.ts')] : [path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js')];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...cmd, ...args], { cwd: repoRoot(), env: { ...process.env, RLVR_DEBUG: '' } });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out: out.split('\n').filter((l) => !l.startsWith('npm warn')).join('\n') }));
  });
}

test('CLI: spectrum prints tables and write files; bad input is one line, exit 2, nothing written', async () => {
  const dir = tempDir();
  const s = await cli(['spectrum', '--base', BASE, '--tuned', RL, SFT, '-k', '4', '--layers', '0', '--modules', 'q,down', '--no-cache', '--out', path.join(dir, 's'), '--quiet']);
  assert.equal(s.code, 0, s.out);
  assert.match(s.out, /max angle/);
  assert.ok(fs.existsSync(path.join(dir, 's', 'spectrum.json')) && fs.existsSync(path.join(dir, 's', 'bounds.json')));
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 's', 'spectrum.json'), 'utf8')) as { tensors: { name: string }[]; params: { k: number; modules: string[]; layers: number[] } };
  assert.deepEqual(doc.tensors.map((t) => t.name), ['model.layers.0.mlp.down_proj.weight', 'model.layers.0.self_attn.q_proj.weight']);
  assert.deepEqual(doc.params.layers, [0]); assert.deepEqual(doc.params.modules, ['q', 'down']); assert.equal(doc.params.k, 4);
  for (const [args, re] of [
    [['principal', '--base', BASE, '--tuned', RL, '--alpha', '2', '--no-cache'], /--alpha must be/],
    [['spectrum', '--base', path.join(dir, 'nope'), '--tuned', RL, '--no-cache'], /nope/],
    // another model (every weight another shape): an error naming it, not an empty analysis
    [['principal', '--base', BASE, '--tuned', fixture('sparsity', 'ckpt', 'base'), '--no-cache'],
      /sparsity.ckpt.base: none of the base's 14 compared tensors is here with the same name and shape; e\.g\. model\.layers\.0\.mlp\.down_proj\.weight is \[24x16\], the base's \[48x96\]/],
  ] as [string[], RegExp][]) {
    const r = await cli([...args, '--out', path.join(dir, 'err')]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.out}`);
    assert.match(r.out, re);
    assert.equal(r.out.trim().split('\n').length, 1, r.out);
  }
  // the other usage errors, through the same option parsing in-process
  const flags = { base: BASE, tuned: [RL], k: '64', alpha: '0.5', cache: false, probe: 'bf16', eta: '1e-3', tol: '1e-5', seed: '0', method: 'auto' };
  assert.throws(() => geometryOptions({ ...flags, modules: 'qq' }), (e: unknown) => e instanceof UsageError && /unknown module kind/.test(e.message));
  assert.throws(() => geometryOptions({ ...flags, shard: '3/3' }), (e: unknown) => e instanceof UsageError && /--shard/.test(e.message));
  assert.throws(() => geometryOptions({ ...flags, method: 'svd' }), (e: unknown) => e instanceof UsageError && /--method/.test(e.message));
  assert.throws(() => geometryOptions({ ...flags, k: '0' }), (e: unknown) => e instanceof UsageError && /-k/.test(e.message));
  await assert.rejects(runGeometry(BASE, [RL], { layers: '9', cacheDir: null }), (e: unknown) => e instanceof UsageError && /out of range/.test(e.message));
  await assert.rejects(runGeometry(BASE, [RL], { modules: ['embed'], cacheDir: null }), (e: unknown) => e instanceof UsageError && /no 2-D linear weights/.test(e.message));
  assert.throws(() => mergeOutputs([path.join(dir, 'nothing-here')], path.join(dir, 'm')), (e: unknown) => e instanceof RlvrError && String(e.file).endsWith('nothing-here'));
  assert.equal(fs.existsSync(path.join(dir, 'err')), false);
});

test('--exact: dense fp64 SVD for the chosen tensors, recorded; randomized agrees within the SPEC §3 contract', async () => {
  const o = { k: 4, layers: [0], modules: ['k', 'v'] as ('k' | 'v')[], cacheDir: null, want: { principal: false, bounds: false } };
  const ex = (await runGeometry(BASE, [SFT], { ...o, exact: /k_proj/ })).spectrum!;
  const rnd = (await runGeometry(BASE, [SFT], { ...o, method: 'randomized' })).spectrum!;
  assert.equal(rnd.params.solver.method, 'randomized');
  assert.equal(rnd.tensors[0]!.base.solve.method, 'randomized-subspace-iteration-rayleigh-ritz');
  assert.equal(ex.params.exact, 'k_proj');
  assert.equal(rnd.params.exact, null);
  const [ek, ev] = ex.tensors, [rk] = rnd.tensors;
  assert.equal(ek!.base.solve.method, 'exact-jacobi-fp64');
  assert.notEqual(ev!.base.solve.method, 'exact-jacobi-fp64');
  const a = ek!.results[0]!, b = rk!.results[0]!;
  for (const [x, y] of [[a.anglesU, b.anglesU], [a.anglesV, b.anglesV]] as const) {
    x.forEach((t, i) => assert.ok(Math.abs(t - y[i]!) <= Math.max(0.1, 0.1 * t), `angle ${i}: exact ${t} vs randomized ${y[i]}`));
  }
  a.singularValues.forEach((s, i) => assert.ok(Math.abs(s - b.singularValues[i]!) <= 1e-4 * s));
});

test('NaN/Inf: a non-finite tuned weight is skipped and listed, the rest is analysed', async () => {
  const { openCheckpoint } = await import('../src/io/checkpoint.js');
  const { writeSafetensors } = await import('../src/io/writer.js');
  const dir = tempDir();
  const src = openCheckpoint(RL);
  const bad = 'model.layers.1.mlp.up_proj.weight';
  const tensors = src.names.map((name) => {
    const bytes = Uint8Array.from(src.readBytes(name));
    if (name === bad) { bytes[10] = 0xc0; bytes[11] = 0x7f; } // bf16 NaN at entry 5
    return { name, dtype: src.info(name).dtype, shape: src.info(name).shape, data: bytes };
  });
  src.close();
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  const r = await runGeometry(BASE, [dir], { k: 4, layers: [1], cacheDir: null, want: { bounds: false } });
  assert.deepEqual(r.spectrum!.skipped[0]!.nonFinite, [bad]);
  assert.equal(r.spectrum!.tensors.find((t) => t.name === bad)!.results[0], null);
  assert.equal(r.principal!.tensors.find((t) => t.name === bad)!.results[0], null);
  assert.equal(r.spectrum!.tensors.filter((t) => t.results[0] !== null).length, 6);
});
