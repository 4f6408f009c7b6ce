/**
 * Report benchmark: a 1.5B-shaped analysis (DeepSeek-R1-Distill-Qwen-1.5B names: 28 layers,
 * 196 linear tensors; 5 tuned runs) opens and becomes interactive in headless Chromium.
 *
 * `rlvr-lens analyze` (every stage: sparsity, maps, spectrum k = 64, principal, bounds,
 * locality, dynamics over 4 checkpoints) runs on synthetic checkpoints with the real tensor
 * names and count at reduced width (scale 1/16, env RLVR_BENCH_REPORT_SCALE) — the report's
 * size and work do not depend on the width except through the heatmaps, so maps.json is then
 * rewritten at the FULL 1.5B shapes' pooled sizes (MapsCollector's budget rule; pixels
 * resampled from the reduced masks).
 *
 * Prints: report.html size, build time, time from navigation to interactive (ready flag,
 * all sections rendered), time for a layer change to redraw, as absolute numbers and as a
 * ratio to loading a minimal page in the same browser (the baseline).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSyntheticSet } from '../src/synth/generate.js';
import { QWEN2_1P5B } from '../src/synth/qwen2.js';
import { updateSparsity } from '../src/probes/sparsity.js';
import { isLinearWeight, parseTensorName } from '../src/model/names.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import type { BitMask } from '../src/probes/mask.js';
import { analyze } from '../src/run/analyze.js';
import { envelope, toJson } from '../src/report/output.js';
import { writeFileAtomic } from '../src/io/writer.js';
import { mapSide, poolMask } from '../src/report/html/maps.js';
import type { HeatmapTensor } from '../src/report/html/model.js';
import { writeReport } from '../src/report/html/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return d;
}

/** Full-size shape of a tensor of the reduced model (same name). */
function fullShape(name: string): [number, number] | null {
  const d = QWEN2_1P5B, kv = d.numKvHeads * d.headDim, h = d.hiddenSize, f = d.intermediateSize;
  const k = parseTensorName(name).kind;
  const m: Record<string, [number, number]> = { q: [h, h], k: [kv, h], v: [kv, h], o: [h, h], gate: [f, h], up: [f, h], down: [h, f] };
  return m[k] ?? null;
}

/** Pooled size MapsCollector gives a rows×cols tensor at `side`. */
function pooledSize(rows: number, cols: number, side: number): { size: [number, number]; pool: [number, number] } {
  const p = Math.ceil(rows / side), q = Math.ceil(cols / side);
  return { size: [Math.ceil(rows / p), Math.ceil(cols / q)], pool: [p, q] };
}

export async function buildLargeAnalysis(dir: string, scale: number, threads: number): Promise<{ tensors: number; runs: number; analyzeSeconds: number }> {
  const cache = path.join(repoRoot(), '.rlvr-cache', `report-bench-${scale}`);
  const set = ensureSyntheticSet({ dir: cache, scale, seed: 7, changedFractions: [0.25, 0.3, 0.35, 0.3, 0.9] });
  const dynSet = ensureSyntheticSet({ dir: path.join(cache, 'dyn'), scale, seed: 7, changedFractions: [0.1, 0.2, 0.3, 0.4] });
  const base = set.base.dir;
  const runs = set.tuned.map((t) => t.dir);
  // Step-named copies (links) of the dynamics checkpoints: the dynamics stage reads steps from names.
  const ckDir = path.join(dir, '..', `${path.basename(dir)}-checkpoints`);
  fs.mkdirSync(ckDir, { recursive: true });
  const checkpoints = dynSet.tuned.map((t, i) => {
    const p = path.join(ckDir, `checkpoint-${(i + 1) * 100}`);
    if (!fs.existsSync(p)) fs.symlinkSync(t.dir, p);
    return p;
  });
  const t0 = Date.now();
  await analyze(base, runs, dir, { threads, cacheDir: path.join(cache, 'svd-cache') }, { checkpoints });
  const analyzeSeconds = (Date.now() - t0) / 1000;
  // maps.json at the FULL 1.5B shapes' pooled sizes (what a real 1.5B analysis embeds).
  const b = openCheckpoint(base);
  const linear = b.names.filter((n) => isLinearWeight(parseTensorName(n), b.info(n).shape));
  b.close();
  const side = mapSide(linear.length, runs.length);
  const maps: Record<string, HeatmapTensor> = {};
  const pending = new Map<string, BitMask[]>();
  const linearSet = new Set(linear);
  await updateSparsity(base, runs, {
    threads,
    onMask: (r, name, mask) => {
      if (!linearSet.has(name)) return;
      const ms = pending.get(name) ?? [];
      ms[r] = mask;
      pending.set(name, ms);
      if (ms.filter(Boolean).length < runs.length) return;
      pending.delete(name);
      const [R, C] = fullShape(name)!;
      const { size, pool } = pooledSize(R, C, side);
      const t: HeatmapTensor = { shape: [R, C], size, pool, runs: {} };
      ms.forEach((m, ri) => {
        const small = poolMask(m, side);
        const out = new Uint8Array(size[0] * size[1]);
        for (let i = 0; i < size[0]; i++) for (let j = 0; j < size[1]; j++) {
          const si = Math.min(small.size[0] - 1, Math.floor((i * small.size[0]) / size[0]));
          const sj = Math.min(small.size[1] - 1, Math.floor((j * small.size[1]) / size[1]));
          out[i * size[1] + j] = small.bytes[si * small.size[1] + sj]!;
        }
        t.runs[runs[ri]!] = Buffer.from(out).toString('base64');
      });
      const kind = parseTensorName(name).kind;
      if (kind === 'q' || kind === 'k' || kind === 'v') { t.headDim = 128; t.headAxis = 'rows'; } else if (kind === 'o') { t.headDim = 128; t.headAxis = 'cols'; }
      maps[name] = t;
    },
  });
  writeFileAtomic(path.join(dir, 'maps.json'), toJson(envelope('maps', { params: { pooling: `full 1.5B shapes pooled to ≤${side}×${side} (bench: resampled from width-scaled masks)` }, runs, tensors: maps })));
  writeFileAtomic(path.join(dir, 'runs.json'), toJson(envelope('runs', { tuned: runs.map((p, i) => ({ spec: p, label: `run-${i}`, role: i === 4 ? 'sft' : 'rl' })) })));
  return { tensors: linear.length, runs: runs.length, analyzeSeconds };
}

interface Timing { readyMs: number; navMs: number; layerChangeMs: number }

async function measure(file: string, interactive: boolean): Promise<Timing> {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rlvr-bench-profile-'));
  const ctx = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1300, height: 1000 } });
  try {
    const page = await ctx.newPage();
    const url = `file://${file}`;
    await ctx.route('**/*', (r) => (r.request().url() === url ? r.continue() : r.abort()));
    const t0 = Date.now();
    await page.goto(url);
    await page.waitForFunction('document.documentElement.dataset.ready === "1" || document.title === "baseline"', null, { timeout: 60_000 });
    const readyMs = Date.now() - t0;
    const navMs = (await page.evaluate('performance.now()')) as number;
    let layerChangeMs = 0;
    if (interactive) {
      const t1 = Date.now();
      await page.selectOption('#sel-layer', '3');
      await page.waitForFunction('document.documentElement.dataset.tensor === "model.layers.3.self_attn.q_proj.weight"');
      // Force a frame so the canvas redraw is included.
      await page.evaluate('new Promise((r) => requestAnimationFrame(() => r(0)))');
      layerChangeMs = Date.now() - t1;
    }
    return { readyMs, navMs, layerChangeMs };
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

export default async function bench(): Promise<void> {
  if (!fs.existsSync(CHROMIUM)) { process.stdout.write(`skipped: no Chromium at ${CHROMIUM}\n`); return; }
  const scale = Number(process.env.RLVR_BENCH_REPORT_SCALE ?? 1 / 16);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlvr-report-bench-'));
  try {
    const t0 = Date.now();
    const { tensors, runs, analyzeSeconds } = await buildLargeAnalysis(dir, scale, Math.min(2, os.cpus().length));
    process.stdout.write(`analysis folder (${tensors} linear tensors, ${runs} runs, rlvr-lens analyze at width scale ${scale}: ${analyzeSeconds.toFixed(1)} s; total with full-shape maps ${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) process.stdout.write(`  ${f}: ${(fs.statSync(path.join(dir, f)).size / 1024).toFixed(0)} KiB\n`);
    const t1 = Date.now();
    const r = await writeReport(dir);
    process.stdout.write(`report.html: ${(r.bytes / 1024 / 1024).toFixed(2)} MiB, built in ${Date.now() - t1} ms\n`);
    const basePage = path.join(dir, 'baseline.html');
    fs.writeFileSync(basePage, '<!DOCTYPE html><title>baseline</title><p>baseline</p>');
    const rounds = 3;
    const base: Timing[] = [], rep: Timing[] = [];
    for (let i = 0; i < rounds; i++) { base.push(await measure(basePage, false)); rep.push(await measure(r.path, true)); }
    const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const bReady = med(base.map((t) => t.readyMs)), rReady = med(rep.map((t) => t.readyMs));
    process.stdout.write(`open → interactive (median of ${rounds}, wall clock from goto): ${rReady} ms (page clock ${med(rep.map((t) => t.navMs)).toFixed(0)} ms); minimal page: ${bReady} ms; ratio ${(rReady / Math.max(1, bReady)).toFixed(2)}×\n`);
    process.stdout.write(`layer change → redrawn: ${med(rep.map((t) => t.layerChangeMs))} ms\n`);
    process.stdout.write(`target: interactive in < 3000 ms: ${rReady < 3000 ? 'met' : 'NOT met'}\n`);
  } finally {
    // RLVR_BENCH_REPORT_KEEP=1 keeps the analysis folder and report to look at.
    if (process.env.RLVR_BENCH_REPORT_KEEP === '1') process.stdout.write(`kept: ${dir}/report.html\n`);
    else { fs.rmSync(dir, { recursive: true, force: true }); fs.rmSync(`${dir}-checkpoints`, { recursive: true, force: true }); }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
