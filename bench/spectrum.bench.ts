/**
 * Geometry benchmark: the whole `spectrum + principal` analysis (all 196 linear weights of the
 * Qwen2-1.5B-shaped synthetic models, k = 64, α = 0.5) against bench/spectrum_baseline.py, a
 * numpy/OpenBLAS script running the SAME randomized algorithm (bench/linalg_baseline.py) the
 * straightforward way — both SVDs cold, each for the iteration count rlvr-lens needed for the
 * base weight and with the same Rayleigh–Ritz check schedule (RLVR_BENCH_NUMPY_RR=every: a
 * check every iteration, the baseline until 26 Nov 2026) — with the same thread count,
 * measured in the same run:
 *   1. one tuned model, empty cache:              ours / numpy            (target ≤ 1.0)
 *   2. five tuned models vs one base, empty cache (one call; the base is decomposed once and
 *      every tuned weight warm-starts from it):   ours / (5 × numpy)      (target ≤ 0.5)
 *   3. the same five as five separate calls sharing the on-disk cache (what a user running
 *      `rlvr-lens principal` per model gets):     ours / (5 × numpy)
 * Peak RSS of both sides is printed (ours: sampled every 20 ms). Step 1 and numpy run
 * interleaved RLVR_BENCH_REPEATS times (default 2; the minimum of each is used).
 *
 * The synthetic base's linear weights have a power-law spectrum, σ_j ∝ (j + 1)^-0.3
 * (σ₁/σ₆₄ ≈ 3.5; `synth --spectrum-decay`), because trained weights' spectra decay and the
 * warm start's saving depends on it: on i.i.d. weights (a flat Marchenko–Pastur spectrum,
 * RLVR_BENCH_SPECTRUM_DECAY=0) the top-64 gap is so small that neither solve converges to
 * the angle tolerance and a warm start saves ~5% of the iterations at full size; on the
 * power-law set the tuned solves need ~55% of the base's iterations.
 *
 * Env: RLVR_BENCH_SCALE (width scale of the synthetic models; default 0.25 here: the full
 * 1.5B size takes very long on a small shared machine — state the scale with the numbers),
 * RLVR_BENCH_CACHE (model folder, default $TMPDIR/rlvr-lens-bench, shared with the locality
 * bench's set), RLVR_BENCH_THREADS (GEMM threads for both sides, default 1), RLVR_BENCH_LAYERS
 * (a layer list such as 0-3: only those layers' 7 linear weights each, for a quicker run),
 * RLVR_BENCH_TUNED (1: only the one-model comparison, no need for five tuned models on disk).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runGeometry, type SpectrumDoc } from '../src/run/geometry.js';
import { ensureSyntheticSet } from '../src/synth/generate.js';

const FRACTIONS = [0.3, 0.35, 0.4, 0.45, 0.5];
const K = 64, OVERSAMPLE = 16, ALPHA = 0.5;
/** Spectrum decay of the synthetic base's linear weights (σ_j ∝ (j+1)^-a; 0 = i.i.d. entries). */
const DEFAULT_DECAY = 0.3;

function here(): string { return path.dirname(fileURLToPath(import.meta.url)); }
function repoRoot(): string {
  let d = here();
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
}

/** Runs fn while sampling RSS; returns seconds and peak RSS (MiB). */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; peakMiB: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  const t0 = performance.now();
  try {
    const value = await fn();
    return { value, seconds: (performance.now() - t0) / 1000, peakMiB: Math.max(peak, process.memoryUsage().rss) / 2 ** 20 };
  } finally { clearInterval(timer); }
}

function tmp(prefix: string): string { return fs.mkdtempSync(path.join(os.tmpdir(), prefix)); }

export default async function run(): Promise<void> {
  const scale = Number(process.env.RLVR_BENCH_SCALE ?? 0.25);
  const threads = Number(process.env.RLVR_BENCH_THREADS ?? 1);
  const cache = process.env.RLVR_BENCH_CACHE ?? path.join(os.tmpdir(), 'rlvr-lens-bench');
  fs.mkdirSync(cache, { recursive: true });
  const py = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' });
  const haveNumpy = py.status === 0;
  const nTuned = Number(process.env.RLVR_BENCH_TUNED ?? 5); // 1: only the one-model comparison
  // Trained weights have decaying spectra; i.i.d. synthetic ones have a flat one, on which a
  // top-64 subspace is barely determined and no warm start can help much (see the header).
  const decay = Number(process.env.RLVR_BENCH_SPECTRUM_DECAY ?? DEFAULT_DECAY);
  const setDir = path.join(cache, `qwen2-1p5b-s${scale}${decay > 0 ? `-decay${decay}` : ''}`);
  process.stdout.write(`generating / reusing the synthetic models under ${setDir} (the first run at full size takes ~15 min) ...\n`);
  const set = ensureSyntheticSet({ dir: setDir, scale, seed: 0, spectrumDecay: decay, changedFractions: FRACTIONS.slice(0, Math.max(1, Math.min(5, nTuned))) });
  const base = set.base.dir, tuned = set.tuned.map((t) => t.dir);
  process.stdout.write(`models: base + ${set.tuned.length} tuned (Qwen2 1.5B shapes, width scale ${scale}, linear weights' spectrum ${decay > 0 ? `σ_j ∝ (j+1)^-${decay}` : 'flat (i.i.d. entries)'}) under ${setDir}\n`);
  const layers = process.env.RLVR_BENCH_LAYERS; // e.g. "0-3": a subset of layers for a quicker run
  const common = { k: K, alpha: ALPHA, threads, oversample: OVERSAMPLE, want: { spectrum: true, principal: true, bounds: false }, ...(layers ? { layers } : {}) };

  // 1. one tuned model, empty cache, and the numpy baseline on the same tensors — interleaved
  //    REPEATS times (min of each), so both see the same machine load.
  const repeats = Math.max(1, Number(process.env.RLVR_BENCH_REPEATS ?? 2));
  let one: Awaited<ReturnType<typeof measured<Awaited<ReturnType<typeof runGeometry>>>>> | null = null;
  let npSeconds: number | null = null, npPeak = 0, corename = 'OpenBLAS';
  const c1 = tmp('rlvr-bench-cache-');
  for (let rep = 0; rep < repeats; rep++) {
    fs.rmSync(c1, { recursive: true, force: true });
    const schedule = new Map<string, readonly number[]>(); // base solve's Rayleigh–Ritz iterations
    const r = await measured(() => runGeometry(base, [tuned[0]!], {
      ...common, cacheDir: c1, onSolve: (name, t, sv) => { if (t === null) schedule.set(name, sv.checkedAt); },
    }));
    process.stdout.write(`  round ${rep + 1}: ours ${r.seconds.toFixed(1)} s`);
    if (!one || r.seconds < one.seconds) one = r;
    if (!haveNumpy) { process.stdout.write('\n'); continue; }
    const spec0 = r.value.spectrum as SpectrumDoc;
    const planDir = tmp('rlvr-bench-plan-');
    const planFile = path.join(planDir, 'plan.json');
    // numpy replays the base solve's iteration count AND its Rayleigh–Ritz schedule (rr_at) for
    // both SVDs, as bench/linalg replays it; RLVR_BENCH_NUMPY_RR=every gives numpy a Rayleigh–
    // Ritz step every iteration instead (the baseline before 26 Nov 2026: ~8% more numpy work).
    const every = process.env.RLVR_BENCH_NUMPY_RR === 'every';
    fs.writeFileSync(planFile, JSON.stringify({ k: K, oversample: OVERSAMPLE, alpha: ALPHA, bins: 20, tensors: spec0.tensors.map((t) => ({
      name: t.name, iters: t.base.solve.iterations, method: t.base.solve.method.startsWith('gram') ? 'gram' : 'randomized',
      ...(every ? {} : { rr_at: schedule.get(t.name) ?? null }),
    })) }));
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE; delete env.OPENBLAS_L2_SIZE;
    const p = spawnSync('python3', [path.join(repoRoot(), 'bench', 'spectrum_baseline.py'), '--threads', String(threads), '--base', base, '--tuned', tuned[0]!, '--plan', planFile], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
    fs.rmSync(planDir, { recursive: true, force: true });
    if (p.status !== 0) { process.stdout.write(`, numpy baseline failed: ${p.stderr.split('\n').slice(-3).join(' ')}\n`); continue; }
    const o = JSON.parse(p.stdout.trim().split('\n').pop()!) as { seconds: number; peakRssMiB: number; blas: { corename: string | null } };
    process.stdout.write(`, numpy ${o.seconds.toFixed(1)} s\n`);
    npSeconds = npSeconds === null ? o.seconds : Math.min(npSeconds, o.seconds);
    npPeak = Math.max(npPeak, o.peakRssMiB); corename = o.blas.corename ?? corename;
  }
  if (!haveNumpy) process.stdout.write('numpy baseline skipped: python3 with numpy not found\n');
  const spec = one!.value.spectrum as SpectrumDoc;
  const baseIters = spec.tensors.map((t) => t.base.solve.iterations);
  const tunedIters = spec.tensors.map((t) => t.results[0]?.solve?.iterations ?? 0);
  const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);
  const notConv = spec.tensors.filter((t) => !t.base.solve.converged).length;
  const gram = spec.tensors.filter((t) => t.base.solve.method.startsWith('gram')).length;
  process.stdout.write(`tensors: ${spec.tensors.length}, ${gram} on topKSVD's fp64 Gram path (short side ≤ 320) (k = ${K}, oversample ${OVERSAMPLE}, α = ${ALPHA}, threads ${threads}, backend ${spec.params.solver.backend}); `
    + `solver iterations: base ${sum(baseIters)} total (median ${[...baseIters].sort((a, b) => a - b)[baseIters.length >> 1]}, ${notConv} stopped at the fp32 floor / cap), warm-started tuned ${sum(tunedIters)} total\n`);
  process.stdout.write(`ours, 1 tuned, empty cache:            ${one!.seconds.toFixed(1)} s (min of ${repeats}), peak RSS ${one!.peakMiB.toFixed(0)} MiB\n`);
  if (npSeconds !== null) process.stdout.write(`numpy (${corename}), 1 tuned, both SVDs cold: ${npSeconds.toFixed(1)} s (min of ${repeats}), peak RSS ${npPeak.toFixed(0)} MiB\n`);
  if (tuned.length < 5) {
    if (npSeconds !== null) process.stdout.write(`RATIO one tuned model:            ours / numpy     = ${(one!.seconds / npSeconds).toFixed(3)}  (target ≤ 1.0)\n`);
    process.stdout.write(`(width scale ${scale}${layers ? `, layers ${layers}` : ''}; RLVR_BENCH_TUNED=${nTuned}: five-model part skipped; load average ${os.loadavg()[0]!.toFixed(1)})\n`);
    fs.rmSync(c1, { recursive: true, force: true });
    return;
  }
  // 2. five tuned models in one call, empty cache
  const c2 = tmp('rlvr-bench-cache-');
  const five = await measured(() => runGeometry(base, tuned, { ...common, cacheDir: c2 }));
  process.stdout.write(`ours, 5 tuned in one call, empty cache: ${five.seconds.toFixed(1)} s, peak RSS ${five.peakMiB.toFixed(0)} MiB\n`);
  // 3. five separate calls sharing the cache
  const c3 = tmp('rlvr-bench-cache-');
  let sep = 0, sepPeak = 0;
  for (const t of tuned) {
    const r = await measured(() => runGeometry(base, [t], { ...common, cacheDir: c3 }));
    sep += r.seconds; sepPeak = Math.max(sepPeak, r.peakMiB);
  }
  process.stdout.write(`ours, 5 separate calls, shared cache:  ${sep.toFixed(1)} s, peak RSS ${sepPeak.toFixed(0)} MiB\n`);
  for (const d of [c1, c2, c3]) fs.rmSync(d, { recursive: true, force: true });
  if (npSeconds !== null) {
    process.stdout.write(`RATIO one tuned model:            ours / numpy     = ${(one!.seconds / npSeconds).toFixed(3)}  (target ≤ 1.0)\n`);
    process.stdout.write(`RATIO five tuned, one call:       ours / 5×numpy   = ${(five.seconds / (5 * npSeconds)).toFixed(3)}  (target ≤ 0.5)\n`);
    process.stdout.write(`RATIO five tuned, separate calls: ours / 5×numpy   = ${(sep / (5 * npSeconds)).toFixed(3)}  (target ≤ 0.5)\n`);
  }
  process.stdout.write(`(width scale ${scale}${layers ? `, layers ${layers}` : ''}; ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)} at the end: timings on a shared machine are noisy)\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await run();
