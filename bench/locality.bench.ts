/**
 * Locality benchmark (issue #4): five tuned models with the exact shapes of
 * DeepSeek-R1-Distill-Qwen-1.5B (bf16; 30–50% of entries changed, engineer B's synthetic
 * generator with `--base`) against one base, measured in one run:
 *   - `rlvr-lens locality --base B --tuned T1..T5` end to end (fresh process, default threads,
 *     JSON to /dev/null, no figures) vs `cat` of all six checkpoints from page cache
 *     (target ≤ 1.5×). Each checkpoint file is read once: every analysed tensor is one task
 *     that reads the base tensor and the five tuned tensors and profiles them where they were
 *     read (fused WebAssembly compare + joint histogram). Only 2-D linear weights are analysed
 *     (embeddings are not), so the probe reads less than cat does (~74% of the entries).
 *   - the mask pass alone (the sparsity probe with onMask over the same tensors), for scale;
 *   - peak RSS of the probe (masks are bitsets: R × one tensor's bits per worker).
 * Timings are the minimum of RLVR_BENCH_REPEAT (default 3) runs after a warm-up; the spread
 * (max/min − 1) is printed as the noise estimate.
 *
 * Env: RLVR_BENCH_SCALE (default 1 = full size: six models ≈ 21 GB, which must fit the page
 * cache for the comparison to mean anything; 0.5 ≈ 5.3 GB), RLVR_BENCH_CACHE (model cache
 * folder, default $TMPDIR/rlvr-lens-bench, shared with the sparsity bench),
 * RLVR_BENCH_REPEAT, RLVR_BENCH_THREADS (default: all cores).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureSyntheticSet } from '../src/synth/generate.js';
import { defaultThreads } from '../src/run/pool.js';
import { type Timing, must, repeat } from './timing.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const isTs = import.meta.url.endsWith('.ts');
const cliMain = path.join(here, '..', 'src', 'cli', isTs ? 'main.ts' : 'main.js');
const FRACTIONS = [0.3, 0.35, 0.4, 0.45, 0.5];

function href(p: string): string { return new URL(`file://${path.resolve(p)}`).href; }

/** Runs `rlvr-lens locality` in a fresh process; returns its peak RSS in bytes and its stdout. */
function runLocality(base: string, tuned: string[], threads: number): { rss: number; out: string } {
  const args = ['locality', '--base', base, '--tuned', ...tuned, '--threads', String(threads), '--json', '--quiet', '--no-figures'];
  const code = `import(${JSON.stringify(href(cliMain))}).then(async (m) => { const c = await m.main(${JSON.stringify(['node', 'rlvr-lens', ...args])}); process.stderr.write('MAXRSS ' + process.resourceUsage().maxRSS + '\\n'); process.exitCode = c; })`;
  const r = spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 1 << 30 });
  must(r, 'rlvr-lens locality');
  const m = /MAXRSS (\d+)/.exec(r.stderr);
  return { rss: m ? Number(m[1]) * 1024 : NaN, out: r.stdout };
}

/** The mask pass alone (the sparsity probe's single read with onMask, same tensors), as the floor locality builds on. */
function runMaskPass(base: string, tuned: string[], threads: number): void {
  const sp = path.join(here, '..', 'src', 'probes', isTs ? 'sparsity.ts' : 'sparsity.js');
  const code = `import(${JSON.stringify(href(sp))}).then(async (m) => { await m.updateSparsity(${JSON.stringify(base)}, ${JSON.stringify(tuned)}, { threads: ${threads}, filter: (n) => /_proj\\.weight$/.test(n), onMask: () => {} }); })`;
  must(spawnSync(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' }), 'mask pass');
}

function gib(b: number): string { return `${(b / 2 ** 30).toFixed(2)} GiB`; }
function mib(b: number): string { return `${(b / 2 ** 20).toFixed(b < 10 * 2 ** 20 ? 2 : 0)} MiB`; }

export default async function localityBench(): Promise<void> {
  const scale = Number(process.env.RLVR_BENCH_SCALE ?? 1);
  const repeats = Math.max(1, Number(process.env.RLVR_BENCH_REPEAT ?? 3));
  const threads = Math.max(1, Number(process.env.RLVR_BENCH_THREADS ?? defaultThreads()));
  const cache = process.env.RLVR_BENCH_CACHE ?? path.join(os.tmpdir(), 'rlvr-lens-bench');
  fs.mkdirSync(cache, { recursive: true });
  const dir = path.join(cache, `qwen2-1p5b-s${scale}`);
  const needed = 6 * 3.56e9 * scale * scale * 1.07;
  const have = FRACTIONS.every((_, i) => fs.existsSync(path.join(dir, `tuned-${i}`, 'synth.json')));
  const st = fs.statfsSync(cache);
  if (!have && st.bavail * st.bsize < needed) {
    process.stdout.write(`skipped: needs ~${gib(needed)} free under ${cache} (set RLVR_BENCH_SCALE=0.5 for a smaller run)\n`);
    return;
  }
  if (needed > os.totalmem() * 0.8) {
    process.stdout.write(`note: the six models (~${gib(needed)}) exceed 80% of RAM (${gib(os.totalmem())}); cat and the probe will both read partly from disk\n`);
  }
  process.stdout.write(`generating / reusing base + 5 tuned models under ${dir} ...\n`);
  const t0 = Date.now();
  const set = ensureSyntheticSet({ dir, scale, seed: 0, changedFractions: FRACTIONS });
  process.stdout.write(`  (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  const files = (d: string): string[] => fs.readdirSync(d).filter((f) => f.endsWith('.safetensors')).map((f) => path.join(d, f));
  const all = [set.base.dir, ...set.tuned.map((t) => t.dir)].flatMap(files);
  const bytes = set.base.bytes + set.tuned.reduce((a, t) => a + t.bytes, 0);
  process.stdout.write(`models: Qwen2 1.5B shapes at width scale ${scale}, base + 5 tuned = ${gib(bytes)} in ${all.length} files; ${os.cpus().length} cores, threads ${threads}, min of ${repeats}\n`);

  const tuned = set.tuned.map((t) => t.dir);
  const cat = repeat(repeats, () => must(spawnSync('sh', ['-c', `cat ${all.map((f) => JSON.stringify(f)).join(' ')} > /dev/null`]), 'cat'));
  const pass = repeat(repeats, () => runMaskPass(set.base.dir, tuned, threads));
  let rss = 0;
  let out = '';
  const probe = repeat(repeats, () => { const r = runLocality(set.base.dir, tuned, threads); rss = Math.max(rss, r.rss); out = r.out; });
  const spread = (t: Timing): string => `+${(((t.max / t.min) - 1) * 100).toFixed(0)}%`;
  const line = (what: string, t: Timing, extra = ''): string =>
    `  ${what.padEnd(46)} wall ${t.min.toFixed(2).padStart(7)} s (max ${spread(t)})  cpu ${t.cpu.toFixed(2).padStart(6)} s${extra}\n`;
  const ratio = (a: Timing, b: Timing): string => `wall ×${(a.min / b.min).toFixed(2)}, cpu ×${(a.cpu / b.cpu).toFixed(2)}`;
  process.stdout.write(line('cat all six checkpoints > /dev/null', cat));
  process.stdout.write(line('mask pass only (updateSparsity + onMask)', pass, `  vs cat: ${ratio(pass, cat)}`));
  process.stdout.write(line(`rlvr-lens locality (5 runs), ${threads} thread(s)`, probe, `  vs cat: ${ratio(probe, cat)} (target ≤ 1.5); vs mask pass: ${ratio(probe, pass)}`));
  const doc = JSON.parse(out) as { tensors: { numel: number; shape: number[] }[]; all: { meanJaccard: number; meanBernoulli: number; meanMagnitudeMatched: number } };
  const maxNumel = Math.max(...doc.tensors.map((t) => t.numel));
  const analysed = doc.tensors.reduce((a, t) => a + t.numel, 0);
  process.stdout.write(
    `  analysed: ${doc.tensors.length} linear weights, ${(analysed / 1e9).toFixed(3)} G entries per model; ` +
    `all pooled: J ${doc.all.meanJaccard.toFixed(4)}, Bernoulli ${doc.all.meanBernoulli.toFixed(4)}, magnitude-matched ${doc.all.meanMagnitudeMatched.toFixed(4)}\n` +
    `  peak RSS ${mib(rss)}; masks of the largest tensor as bitsets: 5 × ${mib(maxNumel / 8)} (1 byte per entry would be ${mib(5 * maxNumel)})\n`,
  );
}
