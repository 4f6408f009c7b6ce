/**
 * The locality pass's fused WebAssembly kernel (src/probes/profile-kernel.ts, used by
 * runLocalityPass for all-bf16 tensors) must give exactly what the per-entry JS path gives
 * (runLocality): masks, counts, bins with heavy ties straddling several bins, binade rates,
 * consensus, non-finite counts. Hand-made checkpoints cover ±0 pairs, NaN/Inf on either
 * side, a tensor over one kernel chunk (2^17 entries) with a partial last chunk, a tensor of
 * a few distinct magnitudes, an fp32 tensor (generic path) and R = 9 runs (over the
 * kernel's 8: generic path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type TensorSource, openCheckpoint } from '../src/io/checkpoint.js';
import { writeSafetensors, type TensorToWrite } from '../src/io/writer.js';
import { localityDocument, runLocality, runLocalityPass } from '../src/probes/locality.js';
import { Bf16ProfileKernel, profileKernelAvailable, forEachPatternPosition } from '../src/probes/profile-kernel.js';
import { fusedEligible, profileChunkElems, profileSnapshotMisses, straddlerSpans } from '../src/probes/locality-engine.js';
import { binLayout } from '../src/probes/locality.js';
import { updateSparsity } from '../src/probes/sparsity.js';
import { toJson } from '../src/report/output.js';
import { Rng } from '../src/util/random.js';
import { tempDir } from './helpers.js';

const NAMES = [
  'model.layers.0.mlp.up_proj.weight', // 301 × 500 = 150,500 entries: two kernel chunks, the last partial
  'model.layers.0.self_attn.q_proj.weight', // 257 × 301: five distinct magnitudes, each straddling several bins across sub-chunks
  'model.layers.0.self_attn.k_proj.weight', // fp32: the generic path
  'model.layers.1.self_attn.v_proj.weight', // special values
  'model.layers.1.mlp.up_proj.weight', // 1030 × 1024 = 1,054,720 > 2^20: straddlers found from a sampled base histogram
  'model.layers.1.mlp.down_proj.weight', // 1024 × 1030: the sampled blocks are ×16 larger than the rest, so the sample misses the straddlers and the bins fall back to the walk
];
const SHAPES: Record<string, [number, number]> = {
  [NAMES[0]!]: [301, 500], [NAMES[1]!]: [257, 301], [NAMES[2]!]: [16, 40], [NAMES[3]!]: [33, 33], [NAMES[4]!]: [1030, 1024], [NAMES[5]!]: [1024, 1030],
};

function bf16(x: number): number {
  const f = new Float32Array([x]);
  return new Uint32Array(f.buffer)[0]! >>> 16;
}

/** Base and R tuned checkpoints; returns their folders. */
function makeSet(dir: string, R: number, seed: number, names: readonly string[] = NAMES): { base: string; tuned: string[] } {
  const rng = new Rng(seed);
  const base = new Map<string, Uint16Array | Float32Array>();
  for (const name of names) {
    const [r, c] = SHAPES[name]!;
    const n = r * c;
    if (name === NAMES[2]) { const a = new Float32Array(n); for (let i = 0; i < n; i++) a[i] = rng.normal() * 0.02; base.set(name, a); continue; }
    const h = new Uint16Array(n);
    const few = [0.5, 0.25, -0.125, 0.0078125, 1e-3, 3, -1.75]; // 3 and 1.75: exponent fields 0x80 | 0x7f, the kernel's NaN/Inf prefilter fires falsely
    for (let i = 0; i < n; i++) h[i] = name === NAMES[1] ? bf16(few[rng.int(few.length)]!) : bf16(rng.normal() * 0.02 * (name === NAMES[5] && i % 4096 < 512 ? 16 : 1));
    if (name === NAMES[3]) {
      h[0] = 0x0000; h[1] = 0x8000; h[2] = 0x7fc0; h[3] = 0x7f80; h[4] = 0xff80; h[5] = 0x0001; h[6] = 0x8001; h[7] = 0x0000;
    }
    base.set(name, h);
  }
  const write = (folder: string, data: Map<string, Uint16Array | Float32Array>): string => {
    const t: TensorToWrite[] = names.map((name) => {
      const a = data.get(name)!;
      return { name, dtype: a instanceof Float32Array ? 'F32' : 'BF16', shape: SHAPES[name]!, data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) };
    });
    const d = path.join(dir, folder);
    fs.mkdirSync(d, { recursive: true });
    writeSafetensors(path.join(d, 'model.safetensors'), t);
    return d;
  };
  const tuned: string[] = [];
  for (let k = 0; k < R; k++) {
    const data = new Map<string, Uint16Array | Float32Array>();
    const p = 0.05 + 0.08 * k;
    for (const [name, a] of base) {
      const b = a.slice();
      for (let i = 0; i < b.length; i++) if (rng.uniform() < p) b[i] = b instanceof Float32Array ? b[i]! * (1 + 0.01 * rng.normal()) : (b[i]! ^ (1 + rng.int(3)));
      if (name === NAMES[3] && b instanceof Uint16Array) {
        b[0] = 0x8000; // +0 → −0: unchanged
        b[1] = k % 2 === 0 ? 0x0000 : 0x8000; // −0 → ±0: unchanged
        b[7] = 0x7fc0; // 0 → NaN: changed, non-finite
        b[8] = k === 1 ? 0x7f80 : b[8]!; // one run has an Inf
      }
      data.set(name, b);
    }
    tuned.push(write(`t${k}`, data));
  }
  return { base: write('base', base), tuned };
}

function inProcess(base: string, tuned: string[]) {
  const b = openCheckpoint(base);
  const t = tuned.map((x) => openCheckpoint(x));
  try {
    return runLocality(b, t, { allTensors: true, consensusFor: () => true, consensusMaxSize: 0 });
  } finally { b.close(); t.forEach((x) => x.close()); }
}

test('fused locality kernel: exactly the JS path (special values, ties, chunks, fp32, R = 3 and 9)', { timeout: 120_000 }, async () => {
  assert.ok(profileKernelAvailable(3), 'this Node has WebAssembly SIMD');
  const dir = tempDir();
  for (const R of [3, 9]) {
    // the two > 2^20-entry tensors (sampled straddlers) only where the fused kernel runs (R ≤ 8)
    const set = makeSet(path.join(dir, `r${R}`), R, 40 + R, R <= 8 ? NAMES : NAMES.slice(0, 4));
    const ref = inProcess(set.base, set.tuned);
    const doc = (x: typeof ref): string => toJson(localityDocument({ ...x, base: 'B', runs: x.runs.map((_, i) => String(i)), sparsity: null, consensus: [] }, 0));
    for (const threads of [1, 2]) {
      const misses = profileSnapshotMisses();
      const got = await runLocalityPass(set.base, set.tuned, { allTensors: true, threads, consensusFor: () => true, consensusMaxSize: 0 });
      // in-process (1 thread), the fused path ran: only the adversarial tensor's sample missed a straddler
      if (threads === 1 && R <= 8) assert.equal(profileSnapshotMisses() - misses, 1, 'one fallback to the walk');
      assert.equal(doc(got), doc(ref), `R=${R} threads=${threads}: locality document`);
      assert.equal(got.consensus.length, ref.consensus.length, 'consensus images');
      got.consensus.forEach((c, i) => assert.deepEqual([...c.grid.values], [...ref.consensus[i]!.grid.values], `consensus ${c.name}`));
      // the sparsity document of the same pass equals the plain sparsity probe's
      const plain = await updateSparsity(set.base, set.tuned, { threads: 1 });
      assert.equal(toJson(got.sparsity), toJson(plain), `R=${R} threads=${threads}: sparsity document`);
    }
    const v = ref.tensors.find((t) => t.name === NAMES[3])!;
    assert.ok(v.nonFinite.every((c) => c >= 1), `non-finite entries are counted per run: ${v.nonFinite}`);
  }
});

test('Bf16ProfileKernel: masks and joint histogram equal a per-entry reference', () => {
  const rng = new Rng(5);
  for (const R of [1, 2, 5, 8]) {
    const n = 4000 + R; // not a multiple of 32
    const k = new Bf16ProfileKernel(R, 1024);
    const base = new Uint16Array(n).map(() => (rng.uniform() < 0.1 ? [0, 0x8000, 0x7fc0, 0xff80][rng.int(4)]! : bf16(rng.normal())));
    const tuned = Array.from({ length: R }, () => base.map((x) => (rng.uniform() < 0.3 ? (rng.uniform() < 0.2 ? x ^ 0x8000 : x ^ 1) : x)));
    const words = Array.from({ length: R }, () => new Uint32Array(Math.ceil(n / 32)));
    k.baseWhole(n).set(new Uint8Array(base.buffer));
    const baseHist = k.baseHistogram(n);
    for (let c = 0; c < n; c += 1024) {
      const m = Math.min(1024, n - c);
      tuned.forEach((t, r) => k.tunedRegion(r, 2 * m).set(new Uint8Array(t.buffer, 2 * c, 2 * m)));
      for (let o = 0; o < m; o += 256) k.run(n, c + o, o, Math.min(256, m - o)); // sub-chunks
    }
    for (let r = 0; r < R; r++) words[r]!.set(k.maskWords(r, n)); // written in place by run()
    const got = k.take();
    const total = new Uint32Array(32768), changed = tuned.map(() => new Uint32Array(32768)), joint = new Float64Array(1 << R);
    for (let i = 0; i < n; i++) {
      const key = base[i]! & 0x7fff;
      total[key]!++;
      let mask = 0;
      tuned.forEach((t, r) => {
        const x = base[i]!, y = t[i]!;
        const c = x !== y && (x | y) !== 0x8000 ? 1 : 0;
        assert.equal((words[r]![i >>> 5]! >>> (i & 31)) & 1, c, `R=${R} entry ${i} run ${r}`);
        if (c) { changed[r]![key]!++; mask |= 1 << r; }
      });
      joint[mask]!++;
    }
    assert.deepEqual([...got.total], [...total], `R=${R} totals`);
    assert.deepEqual([...baseHist], [...total], `R=${R} base histogram`);
    changed.forEach((c, r) => assert.deepEqual([...got.changed[r]!], [...c], `R=${R} run ${r}`));
    assert.deepEqual([...got.perRunMask], [...joint], `R=${R} joint`);
    // walkPattern: the run masks of the first `need` occurrences of a pattern from entry
    // `first` on, in index order (vector part and the < 8-entry tail), as a plain loop finds them
    const runMask = (i: number): number => words.reduce((a, w, r) => a | (((w[i >>> 5]! >>> (i & 31)) & 1) << r), 0);
    const tailPattern = base[n - 1]! & 0x7fff;
    for (const [first, count, pattern, need] of [[0, n, base[3]! & 0x7fff, 1e9], [8, n - 8, tailPattern, 1e9], [n - 13, 13, tailPattern, 1e9], [40, 2000, 0, 3], [0, n, 0x7fc0, 1e9], [0, 24, 0x1234, 5]] as const) {
      const want = new Float64Array(1 << R);
      let wantFound = 0;
      for (let i = first; i < first + count && wantFound < need; i++) if ((base[i]! & 0x7fff) === pattern) { want[runMask(i)]!++; wantFound++; }
      const cum = new Float64Array(1 << R).fill(1);
      const found = k.walkPattern(first, count, pattern, Math.min(need, 2 ** 31 - 1), cum);
      assert.equal(found, wantFound, `R=${R} walk ${first}+${count} pattern ${pattern}`);
      assert.deepEqual([...cum], [...want].map((x) => x + 1), `R=${R} walk ${first}+${count} pattern ${pattern}: masks (added to cum)`);
    }
    assert.equal(k.take().total.reduce((a, b) => a + b, 0), 0, 'take() clears the histogram');
  }
  // the NaN/Inf flag: set by an all-ones exponent, clear for ordinary values, and (a superset
  // test) possibly set when values ≥ 2 occur; never clear when a NaN/Inf is present
  const k = new Bf16ProfileKernel(1, 64);
  const flag = (b: number[], t: number[]): boolean => {
    k.baseWhole(32).set(new Uint8Array(Uint16Array.from(b).buffer));
    k.tunedRegion(0, 64).set(new Uint8Array(Uint16Array.from(t).buffer));
    k.run(32, 0, 0, 32);
    k.take();
    return k.nonFiniteSeen();
  };
  const fill = (x: number, at: number[] = [], v = 0): number[] => Array.from({ length: 32 }, (_, i) => (at.includes(i) ? v : x));
  assert.equal(flag(fill(bf16(0.02)), fill(bf16(0.021))), false);
  assert.equal(flag(fill(bf16(0.02)), fill(bf16(0.02), [7], 0x7fc0)), true, 'NaN in a tuned entry');
  assert.equal(flag(fill(bf16(0.02), [31], 0xff80), fill(bf16(0.02))), true, '−Inf in the base');
  assert.equal(flag(fill(bf16(1.99), [9], bf16(3)), fill(bf16(1.99))), true, 'exponents 0x7f | 0x80 (a false positive the caller recounts)');
});

test('forEachPatternPosition lists exactly the positions (and ids) of the table patterns, ascending, and stops when told', () => {
  const rng = new Rng(9);
  const h = new Uint16Array(300_001).map(() => rng.int(65536));
  const table = new Uint8Array(32768);
  for (let i = 0; i < 40; i++) table[rng.int(32768)] = 1 + rng.int(255);
  const want: number[] = [], wantIds: number[] = [];
  h.forEach((x, i) => { if (table[x & 0x7fff]) { want.push(i); wantIds.push(table[x & 0x7fff]!); } });
  const got: number[] = [], gotIds: number[] = [];
  forEachPatternPosition(h, table, 0, (pos, ids, c) => { got.push(...pos.subarray(0, c)); gotIds.push(...ids.subarray(0, c)); return true; });
  assert.deepEqual(got, want);
  assert.deepEqual(gotIds, wantIds);
  let calls = 0;
  forEachPatternPosition(h, table, 0, () => { calls++; return false; });
  assert.equal(calls, 1, 'visit returning false stops the scan');
});

test('analyze with two or more tuned runs reads once for sparsity, locality and maps; files equal the separate passes', { timeout: 120_000 }, async () => {
  const { analyze } = await import('../src/run/analyze.js');
  const { fixture } = await import('./helpers.js');
  const base = fixture('locality', 'base');
  const runs = ['a', 'b', 'c'].map((r) => fixture('locality', 'runs', `run-${r}`));
  const dir = tempDir();
  const log: string[] = [];
  const stages = ['sparsity', 'maps', 'locality'];
  await analyze(base, runs, path.join(dir, 'one'), { stages, threads: 2 }, { log: (m) => log.push(m) });
  assert.ok(log.some((m) => m.startsWith('sparsity + locality ')), 'the sparsity stage ran the locality pass');
  assert.ok(!log.some((m) => /^locality \d/.test(m)), `the locality stage made no pass of its own: ${log.join(' | ')}`);
  // separately: sparsity + maps from the sparsity pass, locality from its own pass
  await analyze(base, runs, path.join(dir, 'a'), { stages: ['sparsity', 'maps'], threads: 2 });
  await analyze(base, runs, path.join(dir, 'b'), { stages: ['locality'], threads: 2 });
  for (const [f, d] of [['sparsity.json', 'a'], ['maps.json', 'a'], ['locality.json', 'b']] as const) {
    assert.equal(fs.readFileSync(path.join(dir, 'one', f), 'utf8'), fs.readFileSync(path.join(dir, d, f), 'utf8'), f);
  }
});

test('straddlerSpans: sorted disjoint spans; with the whole tensor as the sample they hold every true straddler; a good sample usually does too', () => {
  const rng = new Rng(21);
  for (let trial = 0; trial < 40; trial++) {
    const n = 20_000 + rng.int(200_000);
    const numBins = 2 + rng.int(40);
    // a concentrated pattern histogram (like bf16 weights) or a few heavy patterns (ties)
    const total = new Uint32Array(32768);
    const values = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const p = trial % 2 === 0 ? bf16(Math.abs(rng.normal()) * 0.02) & 0x7fff : 0x3c00 + rng.int(5) * 7;
      values[i] = p;
      total[p]!++;
    }
    const truth = binLayout(total, n, numBins).strad.map((x) => x.m);
    const holds = (spans: [number, number][]): boolean => truth.every((m) => spans.some(([lo, hi]) => m >= lo && m <= hi));
    const exact = straddlerSpans(total, n, n, numBins);
    for (let i = 0; i < exact.length; i++) {
      assert.ok(exact[i]![0] <= exact[i]![1], 'lo ≤ hi');
      if (i > 0) assert.ok(exact[i]![0] > exact[i - 1]![1] + 1, 'sorted, disjoint, merged');
    }
    assert.ok(holds(exact), `trial ${trial}: exact sample holds the straddlers`);
    // a 1/8 sample of blocks of 512 entries, as the engine takes
    const smp = new Uint32Array(32768);
    let count = 0;
    for (let s = 0; s + 512 <= n; s += 4096) { for (let i = s; i < s + 512; i++) smp[values[i]!]!++; count += 512; }
    if (count >= 4096) assert.ok(holds(straddlerSpans(smp, count, n, numBins)), `trial ${trial}: sampled spans hold the straddlers`);
  }
  assert.deepEqual(straddlerSpans(new Uint32Array(32768), 0, 10, 4), [[0, 32767]], 'no sample: every pattern');
  // the chunk of the fused kernel: R regions within ~768 KB, a power of two, never above the pass's chunk
  assert.equal(profileChunkElems(1 << 17, 5), 1 << 16);
  assert.equal(profileChunkElems(1 << 17, 1), 1 << 17);
  assert.equal(profileChunkElems(1 << 17, 8), 1 << 15);
  assert.equal(profileChunkElems(1000, 5), 1000);
});

test('fusedEligible: bf16 tensors under the bitwise rule take the fused kernel unless base + masks exceed 3.5 GiB (then the generic path)', () => {
  if (!profileKernelAvailable(8)) return; // no WebAssembly SIMD here: nothing is fused
  const source = (numel: number, dtype = 'BF16'): TensorSource => ({ info: () => ({ dtype, numel, shape: [numel] }) }) as unknown as TensorSource;
  const cfg = { probe: { rule: 'bf16' as const, eta: 1e-3, tol: 1e-5 }, compareProbes: false, chunkElems: 1 << 17 };
  const ctx = (numel: number, R: number, dtype = 'BF16') => ({ base: source(numel), tuned: Array.from({ length: R }, () => source(numel, dtype)), cfg, scratch: null as never });
  const task = (R: number) => ({ name: 'w', tuned: Array.from({ length: R }, (_, r) => r) });
  // 8 runs: 3 bytes per entry → the limit is 3.5 GiB / 3 ≈ 1.25 G entries
  const limit8 = Math.floor((3.5 * 2 ** 30) / 3);
  assert.equal(fusedEligible(ctx(limit8, 8), task(8)), true);
  assert.equal(fusedEligible(ctx(limit8 + 1, 8), task(8)), false, 'just over the limit: generic path');
  // 2 runs: 2.25 bytes per entry → a larger tensor still fits
  assert.equal(fusedEligible(ctx(limit8 + 1, 2), task(2)), true);
  assert.equal(fusedEligible(ctx(1e6, 5, 'F16'), task(5)), false, 'a tuned model in f16');
  assert.equal(fusedEligible({ ...ctx(1e6, 5), cfg: { ...cfg, compareProbes: true } }, task(5)), false, '--compare-probes');
  assert.equal(fusedEligible({ ...ctx(1e6, 5), cfg: { ...cfg, probe: { rule: 'abs', eta: 1e-3, tol: 1e-5 } } }, task(5)), false, 'the abs rule');
});
