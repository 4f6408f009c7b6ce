/**
 * The sparsity probe end to end on the committed fixtures (fixtures/sparsity/ckpt, written by
 * test/sparsity-fixtures.ts): golden JSON byte for byte, counts against an independent
 * reference, pairing, NaN/Inf, several tuned models with one base read, threads 1 vs 2,
 * shard + merge, masks for other probes, and the CLI.
 * Set RLVR_UPDATE_GOLDEN=1 to rewrite the goldens (and the fixture checkpoints).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { bf16ToNumber } from '../src/io/dtype.js';
import type { BitMask } from '../src/probes/mask.js';
import { type SparsityDoc, mergeSparsityShards, updateSparsity } from '../src/probes/sparsity.js';
import { computeUpdateMask } from '../src/probes/update.js';
import { toJson } from '../src/report/output.js';
import { fixture, repoRoot, tempDir } from './helpers.js';
import { writeSparsityFixtures } from './sparsity-fixtures.js';

process.chdir(repoRoot()); // inputs are recorded relative to the working directory
const C = (n: string): string => path.relative(repoRoot(), fixture('sparsity', 'ckpt', n));
const GOLDEN = fixture('sparsity', 'golden');
const update = process.env.RLVR_UPDATE_GOLDEN === '1';
if (update) {
  writeSparsityFixtures(fixture('sparsity', 'ckpt'));
  fs.mkdirSync(GOLDEN, { recursive: true });
}
const MULTI = [C('tuned-a'), C('tuned-b'), C('base')];

function golden(name: string, doc: SparsityDoc): void {
  const file = path.join(GOLDEN, name);
  if (update) fs.writeFileSync(file, toJson(doc));
  assert.equal(toJson(doc), fs.readFileSync(file, 'utf8'), `golden ${name} (RLVR_UPDATE_GOLDEN=1 rewrites it)`);
}

test('the fixture generator reproduces the committed fixture checkpoints byte for byte', () => {
  const dir = tempDir();
  writeSparsityFixtures(dir);
  const list = (d: string): string[] => fs.readdirSync(d, { recursive: true, withFileTypes: false }).map(String).sort();
  const committed = fixture('sparsity', 'ckpt');
  assert.deepEqual(list(dir), list(committed));
  for (const f of list(committed)) {
    if (fs.statSync(path.join(committed, f)).isDirectory()) continue;
    assert.ok(fs.readFileSync(path.join(dir, f)).equals(fs.readFileSync(path.join(committed, f))), f);
  }
});

test('golden: one base, three tuned models (sharded, edited, itself), --compare-probes', async () => {
  const doc = await updateSparsity(C('base'), MULTI, { compareProbes: true, threads: 1 });
  golden('multi.json', doc);
  // The base against itself: sparsity exactly 1 everywhere, no disagreements.
  const self = doc.summary[2]!;
  assert.equal(self.overall.sparsity, 1);
  assert.equal(self.linear.sparsity, 1);
  assert.deepEqual(self.compare, { absChangedBf16Unchanged: 0, bf16ChangedAbsUnchanged: 0 });
});

test('golden: fp32 pair — the η rule, bf16-visible sparsity and the abs rule differ', async () => {
  const doc = await updateSparsity(C('base32'), [C('tuned32')], { compareProbes: true, threads: 1 });
  golden('fp32.json', doc);
  const s = doc.summary[0]!;
  assert.ok(s.overall.bf16VisibleSparsity > s.overall.sparsity, 'sub-bf16 changes are invisible after rounding');
  assert.ok(s.compare!.absChangedBf16Unchanged > 0 && s.compare!.bf16ChangedAbsUnchanged > 0);
});

test('golden: --probe abs', async () => {
  const doc = await updateSparsity(C('base'), [C('tuned-a')], { probe: { rule: 'abs', tol: 1e-5 }, threads: 1 });
  golden('abs.json', doc);
});

/** Independent reference: decode both sides and apply the rules entry by entry. */
function reference(base: string, tuned: string, name: string): { changed: number; nonFinite: number; absChanged: number } {
  const b = openCheckpoint(base), t = openCheckpoint(tuned);
  try {
    const x = b.readFloat64(name), y = t.readFloat64(name);
    const xr = b.readBytes(name), yr = t.readBytes(name);
    const sameDtype = b.info(name).dtype === t.info(name).dtype;
    const item = xr.byteLength / x.length;
    let changed = 0, nonFinite = 0, absChanged = 0;
    for (let i = 0; i < x.length; i++) {
      const u = x[i]!, v = y[i]!;
      if (!Number.isFinite(u) || !Number.isFinite(v)) {
        nonFinite++;
        const same = sameDtype ? xr.subarray(i * item, (i + 1) * item).every((c, k) => c === yr[i * item + k]) : (Number.isNaN(u) && Number.isNaN(v)) || u === v;
        if (!same) { changed++; absChanged++; }
        continue;
      }
      if (Math.abs(v - u) > 1e-3 * Math.max(Math.abs(u), Math.abs(v))) changed++;
      if (Math.abs(v - u) > 1e-5) absChanged++;
    }
    return { changed, nonFinite, absChanged };
  } finally { b.close(); t.close(); }
}

test('per-tensor counts equal an entry-by-entry reference; pairing lists are exact', async () => {
  const doc = await updateSparsity(C('base'), MULTI, { compareProbes: true, threads: 1 });
  for (const t of doc.tensors) {
    t.results.forEach((r, i) => {
      if (!r) return;
      const ref = reference(C('base'), MULTI[i]!, t.name);
      assert.equal(t.numel - r.unchanged, ref.changed, `${t.name} vs ${MULTI[i]}`);
      assert.equal(r.nonFinite, ref.nonFinite, `${t.name} non-finite`);
      const absChanged = (t.numel - r.unchanged) + r.absChangedBf16Unchanged! - r.bf16ChangedAbsUnchanged!;
      assert.equal(absChanged, ref.absChanged, `${t.name} abs`);
    });
  }
  const pb = doc.pairing[1]!;
  assert.deepEqual(pb.missing, ['model.layers.1.mlp.down_proj.weight']);
  assert.deepEqual(pb.extra, ['extra.weight']);
  assert.deepEqual(pb.shapeMismatch, [{ name: 'model.layers.1.self_attn.o_proj.weight', base: [24, 24], tuned: [48, 12] }]);
  assert.deepEqual(pb.dtypeChanged, [{ name: 'model.norm.weight', base: 'BF16', tuned: 'F32' }]);
  assert.deepEqual(pb.nonFloat, [{ name: 'model.step', base: 'I64', tuned: 'I64' }]);
  const byName = new Map(doc.tensors.map((t) => [t.name, t]));
  assert.equal(byName.get('model.layers.1.mlp.down_proj.weight')!.results[1], null);
  assert.ok(!byName.has('model.step'));
  // NaN/Inf: base has one NaN in layers.0 k_proj; tuned-b adds a NaN and +Inf in layers.0 q_proj.
  const k = byName.get('model.layers.0.self_attn.k_proj.weight')!;
  assert.deepEqual([k.nanBase, k.infBase, k.results[0]!.nonFinite, k.results[0]!.nanTuned], [1, 0, 1, 1]);
  const q = byName.get('model.layers.0.self_attn.q_proj.weight')!.results[1]!;
  assert.deepEqual([q.nonFinite, q.nanTuned, q.infTuned], [2, 1, 1]);
  assert.deepEqual(doc.summary[1]!.tensorsWithNonFinite, ['model.layers.0.self_attn.k_proj.weight', 'model.layers.0.self_attn.q_proj.weight']);
  // dtype change: compared on decoded values (the reference loop above checked the counts)
  const norm = byName.get('model.norm.weight')!.results[1]!;
  assert.equal(norm.tunedDtype, 'F32');
  assert.ok(norm.unchanged < 24 && norm.bf16VisibleUnchanged >= norm.unchanged);
  // aggregates are sums of the per-tensor records
  const s = doc.summary[0]!;
  const lin = doc.tensors.filter((t) => t.linear && t.results[0]);
  assert.equal(s.linear.n, lin.reduce((a, t) => a + t.numel, 0));
  assert.equal(s.linear.unchanged, lin.reduce((a, t) => a + t.results[0]!.unchanged, 0));
  assert.equal(s.byKind.find((b) => b.kind === 'q')!.tensors, 2);
  assert.equal(s.byLayer.length, 2);
});

function countBaseReads(): { bytes: Map<string, number>; restore: () => void } {
  const fsm = fs as unknown as { openSync: typeof fs.openSync; readSync: typeof fs.readSync; default?: unknown };
  const mod = ((fs as unknown as { default?: typeof fs }).default ?? fs) as unknown as { openSync: (...a: unknown[]) => number; readSync: (...a: unknown[]) => number };
  const open0 = mod.openSync, read0 = mod.readSync;
  const paths = new Map<number, string>();
  const bytes = new Map<string, number>();
  mod.openSync = (...a: unknown[]): number => { const fd = open0(...a); paths.set(fd, String(a[0])); return fd; };
  mod.readSync = (...a: unknown[]): number => { const n = read0(...a); const p = paths.get(a[0] as number); if (p) bytes.set(p, (bytes.get(p) ?? 0) + n); return n; };
  syncBuiltinESMExports();
  void fsm;
  return { bytes, restore: () => { mod.openSync = open0; mod.readSync = read0; syncBuiltinESMExports(); } };
}

test('several tuned models read the base once: base bytes read do not grow with the number of tuned models', async () => {
  const baseFile = path.resolve(C('base'), 'model.safetensors');
  const reads: number[] = [];
  for (const tuned of [[C('tuned-a')], [C('tuned-a'), C('tuned-b'), C('tuned-a')]]) {
    const spy = countBaseReads();
    try {
      await updateSparsity(C('base'), tuned, { threads: 1 });
    } finally { spy.restore(); }
    reads.push([...spy.bytes].filter(([p]) => path.resolve(p) === baseFile).reduce((a, [, n]) => a + n, 0));
  }
  assert.ok(reads[0]! > 16000, `base was read (${reads[0]} bytes)`);
  assert.equal(reads[1], reads[0]);
});

test('--threads 1 and 2 give byte-identical JSON and the same masks in the same order', async () => {
  const run = async (threads: number): Promise<{ json: string; masks: string[] }> => {
    const masks: string[] = [];
    const doc = await updateSparsity(C('base'), MULTI, {
      compareProbes: true, threads, rangeElems: 64, chunkElems: 32, minBytesPerThread: 0,
      onMask: (ti, name, m: BitMask) => masks.push(`${ti}:${name}:${m.count()}:${Buffer.from(m.words.buffer).toString('base64')}`),
    });
    return { json: toJson(doc), masks };
  };
  const a = await run(1), b = await run(2);
  assert.equal(a.json, b.json);
  assert.deepEqual(a.masks, b.masks);
  // small chunks and ranges do not change the result either
  assert.equal(a.json, fs.readFileSync(path.join(GOLDEN, 'multi.json'), 'utf8'));
  // masks equal computeUpdateMask tensor by tensor
  const base = openCheckpoint(C('base')), t = openCheckpoint(C('tuned-a'));
  try {
    const first = a.masks.filter((m) => m.startsWith('0:'));
    assert.equal(first.length, 27);
    for (const line of first) {
      const name = line.split(':')[1]!;
      const m = computeUpdateMask(base, t, name);
      assert.equal(line, `0:${name}:${m.count()}:${Buffer.from(m.words.buffer).toString('base64')}`);
    }
  } finally { base.close(); t.close(); }
});

test('--shard i/N outputs merge into the single-run document byte for byte', async () => {
  const single = toJson(await updateSparsity(C('base'), MULTI, { compareProbes: true, threads: 1 }));
  const shards: SparsityDoc[] = [];
  for (let i = 0; i < 3; i++) shards.push(await updateSparsity(C('base'), MULTI, { compareProbes: true, threads: 1, shard: { index: i, count: 3 } }));
  assert.ok(shards.every((s) => s.tensors.length > 0 && s.tensors.length < 26));
  // any order of shards, also through a JSON round trip (what `rlvr-lens merge` reads)
  const parsed = [shards[2]!, shards[0]!, shards[1]!].map((s) => JSON.parse(toJson(s)) as SparsityDoc);
  assert.equal(toJson(mergeSparsityShards(parsed)), single);
  assert.throws(() => mergeSparsityShards([shards[0]!, shards[1]!]), /shards missing: 2\/3/);
  assert.throws(() => mergeSparsityShards([shards[0]!, shards[0]!, shards[1]!]), /given twice/);
  const other = await updateSparsity(C('base'), MULTI, { threads: 1, shard: { index: 2, count: 3 } });
  assert.throws(() => mergeSparsityShards([shards[0]!, shards[1]!, other]), /parameters differ/);
});

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const here = fileURLToPath(import.meta.url);
  const main = path.join(path.dirname(here), '..', 'src', 'cli', here.endsWith('.ts') ? 'main.ts' : 'main.js');
  const r = spawnSync(process.execPath, [...process.execArgv, main, ...args], { encoding: 'utf8', cwd: repoRoot() });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('CLI: --json equals the library document; --out writes JSON, CSV and Markdown; bad input is one line, exit 2', async () => {
  const out = tempDir();
  const r = cli(['sparsity', '--base', C('base'), '--tuned', ...MULTI, '--compare-probes', '--threads', '2', '--json', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, fs.readFileSync(path.join(GOLDEN, 'multi.json'), 'utf8'));
  assert.deepEqual(fs.readdirSync(out).sort(), [
    'sparsity.csv', 'sparsity.json', 'sparsity.kinds.csv', 'sparsity.kinds.md', 'sparsity.layers.csv', 'sparsity.layers.md',
    'sparsity.md', 'sparsity.tensors.csv', 'sparsity.tensors.md',
  ]);
  assert.equal(fs.readFileSync(path.join(out, 'sparsity.json'), 'utf8'), r.stdout);
  const csv = fs.readFileSync(path.join(out, 'sparsity.csv'), 'utf8').split('\n');
  assert.match(csv[0]!, /^tuned,sparsity,sparsity_linear,bf16_visible_sparsity,changed,entries/);
  assert.match(csv[3]!, /^base,1,1,1,0,/);
  const text = cli(['sparsity', '--base', C('base'), '--tuned', C('tuned-b'), '--threads', '1']);
  assert.equal(text.status, 0);
  assert.match(text.stdout, /tuned-b: 1 shape mismatch\(es\), skipped: model\.layers\.1\.self_attn\.o_proj\.weight \[24x24\] vs \[48x12\]/);
  assert.match(text.stdout, /sparsity per module kind/);
  const bad = cli(['sparsity', '--base', C('base'), '--tuned', 'fixtures/sparsity/nope']);
  assert.equal(bad.status, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /^rlvr-lens: fixtures\/sparsity\/nope: /);
  const blocked = path.join(tempDir(), 'file');
  fs.writeFileSync(blocked, 'x');
  const noOut = cli(['sparsity', '--base', C('base'), '--tuned', C('tuned-a'), '--threads', '1', '--out', path.join(blocked, 'sub')]);
  assert.equal(noOut.status, 2);
  assert.match(noOut.stderr, /^rlvr-lens: .*sub: cannot write to output folder/);
  const badProbe = cli(['sparsity', '--base', C('base'), '--tuned', C('tuned-a'), '--probe', 'rel']);
  assert.equal(badProbe.status, 2);
  // a tuned checkpoint of another model (no tensor with the base's name and shape): one line,
  // exit 2, no output folder, rather than an empty table with exit 0
  const otherOut = path.join(tempDir(), 'other');
  const other = cli(['sparsity', '--base', C('base'), '--tuned', 'fixtures/geometry/base', '--threads', '1', '--out', otherOut]);
  assert.equal(other.status, 2);
  assert.equal(other.stderr.trim().split('\n').length, 1);
  assert.match(other.stderr, /^rlvr-lens: \S*fixtures\/geometry\/base: none of the base's 27 compared tensors is here with the same name and shape; e\.g\. model\.embed_tokens\.weight is \[64x48\], the base's \[32x24\]: is it a fine-tune of /);
  assert.equal(fs.existsSync(otherOut), false);
});

test('bf16 reading of the fixture: decoded base values are finite except the planted NaN', () => {
  const b = openCheckpoint(C('base'));
  try {
    const raw = new Uint16Array(b.readBytes('model.layers.0.self_attn.k_proj.weight').buffer.slice(0));
    assert.ok(Number.isNaN(bf16ToNumber(raw[3]!)));
    assert.ok(Number.isFinite(bf16ToNumber(raw[2]!)));
  } finally { b.close(); }
});

test('worker pool: results arrive in task order with the main thread working too, at any queue depth; a worker error is the same RlvrError', async () => {
  const { runOrdered, workerUrl } = await import('../src/run/pool.js');
  const { compareRange, createScratch } = await import('../src/probes/sparsity-engine.js');
  const { RlvrError } = await import('../src/errors.js');
  const cfg = { probe: { rule: 'bf16' as const, eta: 1e-3, tol: 1e-5 }, compareProbes: false, chunkElems: 32 };
  const base = openCheckpoint(C('base')), tuned = openCheckpoint(C('tuned-a'));
  try {
    const names = base.names.filter((n) => n !== 'model.step');
    const tasks = names.flatMap((name) => {
      const n = base.info(name).numel;
      return Array.from({ length: Math.ceil(n / 64) }, (_, i) => ({ name, start: i * 64, end: Math.min(n, (i + 1) * 64), tuned: [0], wantMask: false }));
    });
    const ctx = { scratch: createScratch(cfg), base, tuned: [tuned], cfg };
    const worker = workerUrl('../src/run/sparsity-worker', new URL(import.meta.url).href);
    const data = { base: base.root, tuned: [tuned.root], cfg };
    const seen: number[] = [];
    let changed = 0;
    await runOrdered(tasks, { worker, workerData: data, threads: 3, window: 5, local: (t) => compareRange(ctx, t), onResult: (i, r: { tuned: { changed: number }[] }) => { seen.push(i); changed += r.tuned[0]!.changed; } });
    assert.deepEqual(seen, tasks.map((_, i) => i));
    const doc = await updateSparsity(C('base'), [C('tuned-a')], { threads: 1 });
    assert.equal(changed, doc.summary[0]!.overall.n - doc.summary[0]!.overall.unchanged);
    // deeper per-worker queues (as the locality pass uses) change nothing but the schedule
    for (const depth of [1, 8]) {
      const seenD: number[] = [];
      let changedD = 0;
      await runOrdered(tasks, { worker, workerData: data, threads: 2, window: 64, depth, local: (t) => compareRange(ctx, t), onResult: (i, r: { tuned: { changed: number }[] }) => { seenD.push(i); changedD += r.tuned[0]!.changed; } });
      assert.deepEqual(seenD, tasks.map((_, i) => i), `depth ${depth}: in task order`);
      assert.equal(changedD, changed, `depth ${depth}`);
    }
    // handed out in another order (the last tasks largest first), still delivered in task order
    const { largestLastFirst } = await import('../src/probes/sparsity.js');
    const order = largestLastFirst(tasks, 16, (t) => t.end - t.start);
    assert.deepEqual([...order].sort((a, b) => a - b), tasks.map((_, i) => i), 'a permutation');
    const handed: number[] = [], seenO: number[] = [];
    await runOrdered(tasks, { worker, workerData: data, threads: 2, window: 64, depth: 2, order, local: (t) => { handed.push(tasks.indexOf(t)); return compareRange(ctx, t); }, onResult: (i) => { seenO.push(i); } });
    assert.deepEqual(seenO, tasks.map((_, i) => i), 'order: delivered in task order');
    const localTail = handed.filter((i) => i >= tasks.length - 16);
    assert.deepEqual(localTail, [...localTail].sort((a, b) => order.indexOf(a) - order.indexOf(b)), 'the calling thread took tail tasks in the given order');
    await assert.rejects(runOrdered(tasks, { worker, workerData: data, threads: 2, order: [0, 0], onResult: () => {} }), RangeError);
    // queues capped by work (sizes) instead of task counts: same results, same order
    const seenS: number[] = [];
    let changedS = 0;
    await runOrdered(tasks, { worker, workerData: data, threads: 2, window: 64, depth: 8, order, size: (t) => t.end - t.start, local: (t) => compareRange(ctx, t), onResult: (i, r: { tuned: { changed: number }[] }) => { seenS.push(i); changedS += r.tuned[0]!.changed; } });
    assert.deepEqual(seenS, tasks.map((_, i) => i), 'size: delivered in task order');
    assert.equal(changedS, changed, 'size: same counts');
    // workers started ahead (eager: they open the checkpoints at start-up) are used; one more
    // than needed is stopped; an eager open that failed is the first task's error
    const { startWorker } = await import('../src/run/pool.js');
    const [w1, w2] = [startWorker(worker, { ...data, eager: true }), startWorker(worker, { ...data, eager: true })];
    const w2exit = once(w2, 'exit');
    let changedE = 0;
    const seenE: number[] = [];
    await runOrdered(tasks, { worker, workerData: data, threads: 2, started: [w1, w2], local: (t) => compareRange(ctx, t), onResult: (i, r: { tuned: { changed: number }[] }) => { seenE.push(i); changedE += r.tuned[0]!.changed; } });
    assert.deepEqual(seenE, tasks.map((_, i) => i), 'started: in task order');
    assert.equal(changedE, changed, 'started: same counts');
    // the extra worker was stopped (not left running until the process exits)
    await Promise.race([w2exit, new Promise((_, reject) => setTimeout(() => reject(new Error('the extra started worker was not stopped')), 20_000).unref())]);
    let missingCode = '';
    try { openCheckpoint(path.join(tempDir(), 'no-such-model')); } catch (e) { missingCode = (e as { code: string }).code; }
    assert.ok(missingCode, 'opening a missing checkpoint fails with a code');
    const bad0 = startWorker(worker, { ...data, base: path.join(tempDir(), 'no-such-model'), eager: true });
    await assert.rejects(runOrdered(tasks.slice(0, 4), { worker, workerData: data, threads: 2, started: [bad0], onResult: () => {} }), (e: unknown) => e instanceof RlvrError && e.code === missingCode);
    const bad = [...tasks.slice(0, 3), { name: 'no.such.tensor', start: 0, end: 1, tuned: [0], wantMask: false }];
    await assert.rejects(runOrdered(bad, { worker, workerData: data, threads: 2, onResult: () => {} }), (e: unknown) => e instanceof RlvrError && e.code === 'E_MISSING_TENSOR');
  } finally { base.close(); tuned.close(); }
});

test('largestLastFirst: task order, then the last `tail` tasks by size, largest first (ties in task order)', async () => {
  const { largestLastFirst } = await import('../src/probes/sparsity.js');
  const sizes = [5, 1, 9, 3, 7, 3, 8, 1];
  assert.deepEqual(largestLastFirst(sizes, 5, (x) => x), [0, 1, 2, 6, 4, 3, 5, 7]);
  assert.deepEqual(largestLastFirst(sizes, 0, (x) => x), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(largestLastFirst(sizes, 100, (x) => x), [2, 6, 4, 0, 3, 5, 1, 7]);
});
