/**
 * `rlvr-lens demo`: the whole analysis on the small checkpoints that ship with the project,
 * ending in report.html. The demo set is the lab's `fixtures/demo/` (base, SFT, RL runs,
 * one run's intermediate checkpoints, an intervened base and an RL run from it; each run
 * folder has the lab's run.json and log.jsonl); when that is absent, the locality fixtures
 * (`fixtures/locality/`: base, three RL runs, four checkpoints of one run).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RlvrError } from '../../errors.js';
import { openCheckpoint } from '../../io/checkpoint.js';
import { ensureDir, writeFileAtomic } from '../../io/writer.js';
import { isLinearWeight, parseTensorName } from '../../model/names.js';
import { bernoulliJaccard } from '../../probes/locality.js';
import type { BitMask } from '../../probes/mask.js';
import { updateSparsity } from '../../probes/sparsity.js';
import { envelope, toJson } from '../output.js';
import { runLabel } from './context.js';

export interface DemoRun { path: string; label: string; role: 'rl' | 'sft' | 'other' }

export interface DemoSet {
  /** Where it came from, said in the summary. */
  source: string;
  base: string;
  /** Tuned models from `base` (SFT and RL). */
  tuned: DemoRun[];
  /** One run's intermediate checkpoints, in step order. */
  checkpoints: { path: string; step: number }[];
  /** An intervened base, an RL run from it and the same-recipe run from the original base. */
  intervention: { base: string; run: string; reference: string; layers: number[]; rotated: number[]; permuted: number[] } | null;
  /** Run logs (JSONL) to show as training curves. */
  logs: { name: string; file: string }[];
}

function packageRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json'))) {
    const up = path.dirname(d);
    if (up === d) throw new RlvrError('cannot find the rlvr-lens package folder');
    d = up;
  }
  return d;
}

function readJson(file: string): Record<string, unknown> | null {
  try { return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>; } catch { return null; }
}

function stepOf(name: string): number | null {
  const m = /(\d+)\s*$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** The lab's demo set from its run folders (run.json says each run's kind and parent). */
export function labDemoSet(dir: string): DemoSet | null {
  if (!fs.existsSync(dir)) return null;
  const runs = fs.readdirSync(dir).sort().map((name) => ({ name, dir: path.join(dir, name), spec: readJson(path.join(dir, name, 'run.json')) }))
    .filter((r) => r.spec !== null && fs.existsSync(path.join(r.dir, 'config.json')));
  const base = runs.find((r) => r.spec!.kind === 'pretrain');
  if (!base) return null;
  const fromBase = runs.filter((r) => r.spec!.from === base.name && (r.spec!.kind === 'sft' || r.spec!.kind === 'rl'));
  const tuned: DemoRun[] = fromBase.map((r) => ({ path: r.dir, label: r.name, role: r.spec!.kind === 'sft' ? 'sft' : 'rl' }));
  let checkpoints: DemoSet['checkpoints'] = [];
  for (const r of fromBase) {
    const cdir = path.join(r.dir, 'checkpoints');
    if (!fs.existsSync(cdir)) continue;
    const cks = fs.readdirSync(cdir).map((n) => ({ path: path.join(cdir, n), step: stepOf(n) }))
      .filter((c): c is { path: string; step: number } => c.step !== null).sort((a, b) => a.step - b.step);
    // the run's final model closes the series (its step from run.json)
    const last = typeof r.spec!.steps === 'number' ? r.spec!.steps : null;
    if (last !== null && cks.length > 0 && last > cks[cks.length - 1]!.step) cks.push({ path: r.dir, step: last });
    if (cks.length >= 2) { checkpoints = cks; break; }
  }
  let intervention: DemoSet['intervention'] = null;
  const iv = runs.find((r) => r.spec!.kind === 'intervene');
  if (iv) {
    const run = runs.find((r) => r.spec!.from === iv.name && r.spec!.kind === 'rl');
    // The reference: the run from the original base with the same recipe (seed and data).
    const ref = run && fromBase.find((r) => r.spec!.kind === 'rl' && r.spec!.mixture === run.spec!.mixture && r.spec!.seed === run.spec!.seed);
    if (run && ref) {
      const info = readJson(path.join(iv.dir, 'rlvr_lens', 'intervention.json'));
      const list = (k: string): number[] => (Array.isArray(info?.[k]) ? (info![k] as unknown[]).filter((x): x is number => typeof x === 'number') : []);
      const rotated = list('rotate_vo_layers'), permuted = list('permute_heads_layers');
      intervention = { base: iv.dir, run: run.dir, reference: ref.dir, rotated, permuted, layers: [...new Set([...rotated, ...permuted])].sort((a, b) => a - b) };
    }
  }
  const logs = runs.filter((r) => fs.existsSync(path.join(r.dir, 'log.jsonl'))).map((r) => ({ name: r.name, file: path.join(r.dir, 'log.jsonl') }));
  return { source: dir, base: base.dir, tuned, checkpoints, intervention, logs };
}

/** The committed locality fixtures: base, three RL runs, one run's four checkpoints. */
export function localityDemoSet(dir: string): DemoSet {
  const runs = ['run-a', 'run-b', 'run-c'];
  return {
    source: dir,
    base: path.join(dir, 'base'),
    tuned: runs.map((r) => ({ path: path.join(dir, 'runs', r), label: r, role: 'rl' as const })),
    checkpoints: [100, 200, 300, 400].map((s) => ({ path: path.join(dir, 'dynamics', `checkpoint-${s}`), step: s })),
    intervention: null,
    logs: [],
  };
}

export function defaultDemoSet(): DemoSet {
  const root = packageRoot();
  const lab = labDemoSet(path.join(root, 'fixtures', 'demo'));
  if (lab && lab.tuned.length > 0) return lab;
  const loc = path.join(root, 'fixtures', 'locality');
  if (!fs.existsSync(path.join(loc, 'base'))) throw new RlvrError('no demo checkpoints shipped (fixtures/demo and fixtures/locality are missing)', { file: root });
  return localityDemoSet(loc);
}

export interface DemoResult {
  out: string;
  report: string;
  reportBytes: number;
  set: DemoSet;
  /** Short summary lines for the terminal. */
  summary: string[];
}

/** Jaccard of two masks, per tensor, for the intervention comparison (paper Fig. 6). */
function jaccardOf(a: BitMask, b: BitMask): number {
  const u = a.orCount(b);
  return u === 0 ? NaN : a.andCount(b) / u;
}

async function masksOf(base: string, tuned: string, filter: (n: string) => boolean, threads: number): Promise<Map<string, BitMask>> {
  const m = new Map<string, BitMask>();
  await updateSparsity(base, [tuned], { threads, filter, onMask: (_r, name, mask) => { m.set(name, mask); } });
  return m;
}

/** Paper Fig. 6: overlap of a run from the intervened base with the same-recipe run from the original base. */
export async function interventionOverlap(iv: NonNullable<DemoSet['intervention']>, threads: number): Promise<ReturnType<typeof envelope>> {
  const b = openCheckpoint(iv.base);
  const linear = new Set(b.names.filter((n) => isLinearWeight(parseTensorName(n), b.info(n).shape)));
  b.close();
  // The run from the intervened base is compared with that base; the reference run with ITS parent, the original base.
  const ivMasks = await masksOf(iv.base, iv.run, (n) => linear.has(n), threads);
  const orig = await masksOf(readParentBase(iv.reference), iv.reference, (n) => linear.has(n), threads);
  const tensors = [...linear].sort().map((name) => {
    const a = ivMasks.get(name)!, o = orig.get(name)!;
    const n = a.length, p = a.density(), q = o.density();
    const pn = parseTensorName(name);
    return {
      name, layer: pn.layer, kind: pn.kind,
      // Rotation touches V and O; a head permutation moves q, k, v and o.
      intervened: pn.layer !== null && ((iv.rotated.includes(pn.layer) && (pn.kind === 'v' || pn.kind === 'o')) ||
        (iv.permuted.includes(pn.layer) && (pn.kind === 'q' || pn.kind === 'k' || pn.kind === 'v' || pn.kind === 'o'))),
      numel: n, densityIntervenedRun: p, densityReferenceRun: q,
      intersection: a.andCount(o), union: a.orCount(o), bernoulliIntersection: n * p * q, bernoulliUnion: n * (p + q - p * q),
      jaccard: jaccardOf(a, o), bernoulli: bernoulliJaccard(p, q),
    };
  });
  return envelope('intervention-overlap', {
    definition: 'per tensor: Jaccard of the update masks of (run from the intervened base, vs that base) and (same-recipe run from the original base, vs the original base), beside the Bernoulli baseline pq/(p+q−pq); paper Fig. 6',
    intervenedBase: iv.base, run: iv.run, reference: iv.reference, rotatedLayers: iv.rotated, permutedLayers: iv.permuted, tensors,
  });
}

function readParentBase(runDir: string): string {
  const spec = readJson(path.join(runDir, 'run.json'));
  const from = typeof spec?.from === 'string' ? spec.from : null;
  if (!from) throw new RlvrError('run.json names no parent run', { file: runDir });
  return path.isAbsolute(from) ? from : path.join(path.dirname(runDir), from);
}

export interface DemoOptions {
  out: string;
  set?: DemoSet;
  threads?: number;
  /** Decomposition cache (analyze's default when undefined; null: none). */
  cacheDir?: string | null;
  /** Rank k for M_princ and the spectral probes. Default DEMO_RANK: the lab's matrices are
   * 64–128 wide, so the global default k = 64 would be (nearly) full rank and make the
   * rank-k reconstruction equal W0 itself (M_princ = top |W0|). */
  k?: number;
  onEvent?: (msg: string) => void;
}

/** Rank used by the demo on the lab's small matrices (the lab's own tables use the same). */
export const DEMO_RANK = 16;

/**
 * `rlvr-lens analyze` on the demo set (every stage; the RL runs' intermediate checkpoints as
 * --checkpoints), plus what only the demo knows: the intervention comparison (paper Fig. 6),
 * the lab's run logs, and each run's family (runs.json), then the report over all of it.
 */
export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const set = o.set ?? defaultDemoSet();
  const threads = o.threads ?? 2;
  const say = o.onEvent ?? ((): void => {});
  ensureDir(o.out);
  const { analyze } = await import('../../run/analyze.js');
  say(`analyze: base + ${set.tuned.length} tuned models${set.checkpoints.length ? `, ${set.checkpoints.length} checkpoints` : ''}`);
  await analyze(set.base, set.tuned.map((t) => t.path), o.out, { threads, k: o.k ?? DEMO_RANK, ...(o.cacheDir !== undefined ? { cacheDir: o.cacheDir } : {}) }, {
    checkpoints: set.checkpoints.map((c) => c.path),
    steps: set.checkpoints.map((c) => c.step),
    log: (m) => { if (m.startsWith('stage ')) say(m); },
  });
  if (set.intervention) {
    say('intervention overlap (paper Fig. 6)');
    writeFileAtomic(path.join(o.out, 'intervention-overlap.json'), toJson(await interventionOverlap(set.intervention, threads)));
  }
  if (set.logs.length) {
    ensureDir(path.join(o.out, 'logs'));
    for (const l of set.logs) writeFileAtomic(path.join(o.out, 'logs', `${l.name}.jsonl`), fs.readFileSync(l.file));
  }
  writeFileAtomic(path.join(o.out, 'runs.json'), toJson(envelope('runs', {
    source: set.source,
    tuned: set.tuned.map((t) => ({ spec: t.path, label: t.label, role: t.role })),
  })));
  const { writeReport } = await import('./index.js');
  const rep = await writeReport(o.out, { title: `rlvr-lens demo: ${set.tuned.map((t) => t.label).join(', ')}` });
  return { out: o.out, report: rep.path, reportBytes: rep.bytes, set, summary: summaryLines(rep.data) };
}

/** A few terminal lines in the paper's terms, from the report's own summary tables. */
export function summaryLines(data: import('./model.js').ReportData): string[] {
  const out: string[] = [];
  const colOf = (t: import('./model.js').TableBlock, key: string): number => t.columns.findIndex((c) => c.key === key);
  const pct = (x: unknown): string => (typeof x === 'number' ? `${(x * 100).toFixed(2)}%` : '—');
  const n3 = (x: unknown): string => (typeof x === 'number' ? x.toFixed(3) : '—');
  const t1 = data.summary.table1;
  if (t1) for (const r of t1.rows) out.push(`  ${String(r[0]).padEnd(18)} ${String(r[1]).padEnd(5)} sparsity ${pct(r[colOf(t1, 'sparsity')])}`);
  for (const c of data.summary.claims) {
    const t = c.table;
    if (!c.available || !t || !t.rows.length) continue;
    if (c.id === 'consistent') {
      const r = t.rows[0]!;
      out.push(`  consistent across runs: Jaccard ${n3(r[colOf(t, 'jaccard')])} vs Bernoulli ${n3(r[colOf(t, 'bernoulli')])}, magnitude-matched ${n3(r[colOf(t, 'magnitude')])}`);
    } else if (c.id === 'off-principal' || c.id === 'low-magnitude') {
      const what = c.id === 'off-principal' ? 'overlap with M_princ' : 'overlap with M_low';
      out.push(`  ${what}: ${t.rows.map((r) => `${String(r[0])} ${n3(r[colOf(t, 'obs')])}`).join(', ')} (random ${n3(t.rows[0]![colOf(t, 'rand')])})`);
    } else if (c.id === 'spectrum-preserving') {
      out.push(`  mean max principal angle: ${t.rows.map((r) => `${String(r[0])} ${typeof r[colOf(t, 'meanMax')] === 'number' ? (r[colOf(t, 'meanMax')] as number).toFixed(2) + '°' : '—'}`).join(', ')}`);
    }
  }
  return out;
}

export { runLabel };
