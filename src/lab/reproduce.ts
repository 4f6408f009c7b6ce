/**
 * `lab reproduce`: the recipe of the shipped demo set (fixtures/demo) and its executor.
 * Runs whose parents are done execute in parallel on `jobs` worker threads; each run is a
 * pure function of its spec and its parent's files, so the output is the same bit for bit
 * whatever the parallelism. A SHA256SUMS file lists every written file.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { writeFileAtomic } from '../io/writer.js';
import { type LabModelConfig, DEFAULT_LAB_CONFIG } from './model.js';
import { type RunSpec, executeRun, runParents } from './runs.js';
import { BOS, EOS, VOCAB_SIZE } from './tasks.js';

/** The demo model: 4 layers, 4 query / 2 kv heads, narrow enough to train on 2 CPU cores in minutes. */
export const DEMO_CONFIG: LabModelConfig = {
  ...DEFAULT_LAB_CONFIG,
  vocabSize: VOCAB_SIZE, hiddenSize: 64, intermediateSize: 128, numLayers: 4, numHeads: 4, numKvHeads: 2, headDim: 16,
  bosTokenId: BOS, eosTokenId: EOS,
};

/**
 * RL learning rate 3e-5: Adam moves every weight by about lr per update, so what bf16 can
 * see depends on lr·√updates relative to |w|·2⁻⁹. A typical RLVR run (lr 1e-6, |w| ≈ 0.02,
 * ~10³ updates) sits near one half-ulp; 3e-5 × √80 against this model's |w| ≈ 0.03–0.12 is
 * a comparable regime, and reward still rises within 40 steps (0.54 → 0.66). The
 * experiments set sweeps 1e-4 and 3e-4 (Gate III: the larger the LR, the less sparsity).
 */
const RL_COMMON = { steps: 40, promptsPerStep: 32, groupSize: 8, miniBatches: 2, lr: 3e-5, prompts: 512, klEvery: 1 } as const;

/**
 * The shipped demo set. The base is pretrained with 30% corrupted answers (it knows the
 * 1-digit facts — greedy ≈ 0.9 — but samples them unreliably, ≈ 0.55), so RL on 1-digit
 * prompts has signal; SFT learns teacher answers on the harder 2-digit × 1-digit problems.
 */
export function demoRecipe(): RunSpec[] {
  return [
    { kind: 'pretrain', name: 'base', config: DEMO_CONFIG, seed: 1, mixture: 'add1x1,sub1x1,mul1x1,add2x1,sub2x1', steps: 400, batchSize: 64, lr: 3e-3, warmup: 20, corruptProb: 0.3 },
    { kind: 'sft', name: 'sft', from: 'base', seed: 2, mixture: 'add2x1,sub2x1', examples: 4096, epochs: 2, batchSize: 32, lr: 5e-4, warmup: 10 },
    { kind: 'rl', name: 'rl-add-s1', from: 'base', seed: 11, algo: 'grpo', mixture: 'add1x1', promptSeed: 101, saveEvery: 10, ...RL_COMMON },
    { kind: 'rl', name: 'rl-sub-s2', from: 'base', seed: 12, algo: 'grpo', mixture: 'sub1x1', promptSeed: 102, ...RL_COMMON },
    { kind: 'rl', name: 'rl-mul-s3', from: 'base', seed: 13, algo: 'dapo', mixture: 'mul1x1', promptSeed: 103, ...RL_COMMON },
    { kind: 'intervene', name: 'base-rotated', from: 'base', seed: 5, rotateLayers: '1,2', permuteLayers: '2' },
    { kind: 'rl', name: 'rl-add-rotated', from: 'base-rotated', seed: 11, algo: 'grpo', mixture: 'add1x1', promptSeed: 101, ...RL_COMMON },
  ];
}

/**
 * Experiments on top of the demo set (not shipped; written next to a copy of its base):
 * Gate III (10× and 100× learning rate; the same run saved in fp32), 1e-4, and
 * LoRA / PiSSA / MiLoRA over ranks and learning rates. Masked (sparse) RL runs are added
 * by `maskedRecipe` once mask files exist.
 */
export function experimentsRecipe(): RunSpec[] {
  const add = { kind: 'rl', from: 'base', seed: 11, algo: 'grpo', mixture: 'add1x1', promptSeed: 101, ...RL_COMMON } as const;
  const runs: RunSpec[] = [
    { ...add, name: 'rl-add-lr1e-4', lr: 1e-4 },
    { ...add, name: 'rl-add-lr10x', lr: 3e-4 },
    { ...add, name: 'rl-add-lr100x', lr: 3e-3 },
    { ...add, name: 'rl-add-f32', saveDtype: 'F32' },
  ];
  // Adapter sweep: 30 steps of 16 prompts × 8 (cheaper), with a dense run of the same settings.
  const small = { ...add, steps: 30, promptsPerStep: 16 } as const;
  runs.push({ ...small, name: 'rl-add-dense-small' });
  for (const kind of ['lora', 'pissa', 'milora'] as const) {
    for (const [rank, lr] of [[4, 3e-4], [4, 3e-3], [16, 3e-4], [16, 3e-3]] as const) {
      runs.push({ ...small, name: `rl-add-${kind}-r${rank}-lr${lr}`, lr, adapter: { kind, rank } });
    }
  }
  return runs;
}

/**
 * Sparse RL (paper §5.1, Fig. 9): masks from the base (α = 0.5, k = 16 — a quarter of the
 * demo model's smallest matrix dimension, since k = 64 would be full rank here), then the
 * dense-RL recipe of rl-add-s1 restricted to each mask.
 */
export function maskedRecipe(): RunSpec[] {
  const kinds = ['princ', 'nonprinc', 'low', 'safe', 'random-like-safe'] as const;
  const runs: RunSpec[] = [];
  for (const k of kinds) {
    runs.push({ kind: 'mask', name: `mask-${k}`, from: 'base', maskKind: k, alpha: 0.5, rank: 16, seed: 7 });
    runs.push({ kind: 'rl', name: `rl-add-mask-${k}`, from: 'base', seed: 11, algo: 'grpo', mixture: 'add1x1', promptSeed: 101, ...RL_COMMON, maskFile: `mask-${k}/mask.safetensors` });
  }
  return runs;
}

export interface ReproduceOptions {
  out: string;
  jobs: number;
  /** Only these runs (and nothing else); parents must already exist in `out`. */
  only?: string[];
  recipe?: RunSpec[];
  onEvent?: (msg: string) => void;
}

export interface ReproduceResult { out: string; runs: { name: string; wallSeconds: number }[]; wallSeconds: number; cpuSeconds: number; files: number }

function workerUrl(): URL {
  const self = import.meta.url;
  return self.endsWith('.ts') ? new URL('./reproduce-worker.ts', self) : new URL('./reproduce-worker.js', self);
}

function runInWorker(out: string, spec: RunSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = workerUrl();
    // Under tsx (tests, dev) the worker registers tsx's loader before importing the .ts entry.
    const w = url.pathname.endsWith('.ts')
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`, { eval: true, workerData: { out, spec } })
      : new Worker(url, { workerData: { out, spec } });
    w.once('message', (m: { ok: boolean; error?: string }) => { if (m.ok) resolve(); else reject(new Error(m.error)); });
    w.once('error', reject);
    w.once('exit', (code) => { if (code !== 0) reject(new Error(`worker for ${spec.name} exited with ${code}`)); });
  });
}

/** Runs the recipe into `out` (jobs = 1 runs in this thread). */
export async function reproduce(o: ReproduceOptions): Promise<ReproduceResult> {
  const recipe = o.recipe ?? demoRecipe();
  const todo = o.only ? recipe.filter((r) => o.only!.includes(r.name)) : recipe;
  fs.mkdirSync(o.out, { recursive: true });
  for (const r of todo) fs.rmSync(path.join(o.out, r.name), { recursive: true, force: true });
  const t0 = Date.now(), c0 = process.cpuUsage();
  const done = new Set<string>(recipe.filter((r) => !todo.includes(r)).map((r) => r.name));
  const pending = [...todo];
  const running = new Map<string, Promise<void>>();
  const timings: { name: string; wallSeconds: number }[] = [];
  while (pending.length > 0 || running.size > 0) {
    while (running.size < Math.max(1, o.jobs)) {
      const i = pending.findIndex((r) => runParents(r).every((p) => done.has(p) || !recipe.some((x) => x.name === p)));
      if (i < 0) break;
      const spec = pending.splice(i, 1)[0]!;
      const start = Date.now();
      o.onEvent?.(`start ${spec.name}`);
      const pr = (o.jobs <= 1 ? executeRun(o.out, spec).then(() => undefined) : runInWorker(o.out, spec)).then(() => {
        const s = (Date.now() - start) / 1000;
        timings.push({ name: spec.name, wallSeconds: s });
        o.onEvent?.(`done ${spec.name} (${s.toFixed(1)} s)`);
        done.add(spec.name);
        running.delete(spec.name);
      });
      running.set(spec.name, pr);
      if (o.jobs <= 1) await pr;
    }
    if (running.size > 0) await Promise.race(running.values());
    else if (pending.length > 0) throw new Error(`cannot schedule ${pending.map((p) => p.name).join(', ')}: missing parents`);
  }
  const files = writeSha256Sums(o.out);
  const cu = process.cpuUsage(c0);
  return { out: o.out, runs: timings, wallSeconds: (Date.now() - t0) / 1000, cpuSeconds: (cu.user + cu.system) / 1e6, files };
}

/** All files under `dir` (relative, '/'-separated, sorted), except SHA256SUMS. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(d, e.name), r);
      else if (e.isFile() && r !== 'SHA256SUMS') out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Writes `dir/SHA256SUMS` (sha256sum format); returns the number of files listed. */
export function writeSha256Sums(dir: string): number {
  const files = listFiles(dir);
  writeFileAtomic(path.join(dir, 'SHA256SUMS'), files.map((f) => `${sha256File(path.join(dir, f))}  ${f}`).join('\n') + '\n');
  return files.length;
}

/** Compares `dir` with its SHA256SUMS; returns the mismatches (empty = identical). */
export function checkSha256Sums(dir: string): string[] {
  const lines = fs.readFileSync(path.join(dir, 'SHA256SUMS'), 'utf8').trim().split('\n');
  const bad: string[] = [];
  const listed = new Set<string>();
  for (const l of lines) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(l);
    if (!m) { bad.push(`malformed line: ${l}`); continue; }
    listed.add(m[2]!);
    const f = path.join(dir, m[2]!);
    if (!fs.existsSync(f)) bad.push(`missing: ${m[2]}`);
    else if (sha256File(f) !== m[1]) bad.push(`differs: ${m[2]}`);
  }
  for (const f of listFiles(dir)) if (!listed.has(f)) bad.push(`not listed: ${f}`);
  return bad;
}
