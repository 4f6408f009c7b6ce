/**
 * `lab analyze`: the paper's measurements on the lab's checkpoints, each next to its
 * baseline, composed from the toolkit's probes (sparsity: src/probes/sparsity.ts; locality:
 * src/probes/locality.ts; principal / low-magnitude masks: src/probes/principal.ts; angles:
 * src/linalg/angles.ts; NSS: src/probes/spectrum.ts) — the lab adds no measurement of its
 * own, only the choice of which checkpoints to compare. Missing runs are skipped (listed).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint, type TensorSource } from '../io/checkpoint.js';
import { principalAngles } from '../linalg/angles.js';
import { exactSVD } from '../linalg/svd-dense.js';
import type { Mat64 } from '../linalg/matrix.js';
import { bernoulliJaccard, jaccard, runLocalityPass } from '../probes/locality.js';
import type { BitMask } from '../probes/mask.js';
import { countPerBin, lowMagnitudeMask, magnitudeBinSizes, type OverlapCounts, overlapCounts, overlapRatios, principalMask, referenceBins } from '../probes/principal.js';
import { magnitudeBins } from '../probes/magnitude.js';

const NUM_BINS = 20;
import { updateSparsity } from '../probes/sparsity.js';
import { normalizedSpectralShift } from '../probes/spectrum.js';
import { computeUpdateMask, DEFAULT_PROBE } from '../probes/update.js';
import type { Cell } from '../report/output.js';

/** A titled table (the title becomes the Markdown heading). */
export interface LabTable { title: string; columns: string[]; rows: Cell[][] }

export interface AnalyzeOptions {
  /** The demo set (fixtures/demo). */
  demo: string;
  /** Experiments folder (`lab reproduce --set experiments` and `--set masked`), optional. */
  experiments?: string;
  /** Rank k of M_princ and of the principal-angle subspaces (default 16 for the 64-wide demo model). */
  k?: number;
  alphas?: number[];
}

function linearNames(src: TensorSource): string[] {
  return src.names.filter((n) => /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/.test(n) && src.info(n).shape.length === 2);
}

function exists(dir: string): boolean { return fs.existsSync(path.join(dir, 'model.safetensors')); }

function readLog(dir: string): Record<string, number>[] {
  const f = path.join(dir, 'log.jsonl');
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
}

function meanOf(xs: number[]): number { return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN; }

function topU(W: Float32Array, rows: number, cols: number, k: number): { U: Mat64; V: Mat64; S: Float64Array } {
  const svd = exactSVD({ rows, cols, data: Float64Array.from(W) });
  const take = (M: Mat64): Mat64 => {
    const out = new Float64Array(M.rows * k);
    for (let i = 0; i < M.rows; i++) for (let j = 0; j < k; j++) out[i * k + j] = M.data[i * M.cols + j]!;
    return { rows: M.rows, cols: k, data: out };
  };
  return { U: take(svd.U), V: take(svd.V), S: svd.S };
}

export interface AnalyzeResult { tables: Record<string, LabTable>; skipped: string[]; notes: string[] }

/** Runs every measurement that the available checkpoints allow. */
export async function analyzeLab(o: AnalyzeOptions): Promise<AnalyzeResult> {
  const k = o.k ?? 16;
  const alphas = o.alphas ?? [0.25, 0.5, 0.75];
  const D = (n: string): string => path.join(o.demo, n);
  const E = (n: string): string => path.join(o.experiments ?? '', n);
  const tables: Record<string, LabTable> = {};
  const skipped: string[] = [];
  const notes: string[] = [];
  const rlRuns = ['rl-add-s1', 'rl-sub-s2', 'rl-mul-s3'].filter((r) => exists(D(r)));

  // 1. Sparsity (bf16 probe), RL vs SFT, plus the Gate III and adapter runs.
  const sparsityRows: (string | number)[][] = [];
  const sparsityOf = async (base: string, tuned: string, label: string): Promise<void> => {
    if (!exists(tuned)) { skipped.push(label); return; }
    const doc = await updateSparsity(base, [tuned], { threads: 1 });
    const s = doc.summary[0]!;
    sparsityRows.push([label, s.overall.sparsity, s.linear.sparsity, s.overall.bf16VisibleSparsity]);
  };
  await sparsityOf(D('base'), D('sft'), 'sft');
  for (const r of rlRuns) await sparsityOf(D('base'), D(r), r);
  await sparsityOf(D('base-rotated'), D('rl-add-rotated'), 'rl-add-rotated (vs base-rotated)');
  if (o.experiments) {
    for (const r of ['rl-add-lr1e-4', 'rl-add-lr10x', 'rl-add-lr100x', 'rl-add-f32', 'rl-add-dense-small']) await sparsityOf(D('base'), E(r), r);
    for (const m of ['princ', 'nonprinc', 'low', 'safe', 'random-like-safe']) await sparsityOf(D('base'), E(`rl-add-mask-${m}`), `rl-add-mask-${m}`);
    for (const kind of ['lora', 'pissa', 'milora']) for (const rank of [4, 16]) for (const lr of ['0.0003', '0.003']) {
      await sparsityOf(D('base'), E(`rl-add-${kind}-r${rank}-lr${lr}`), `rl-add-${kind}-r${rank}-lr${lr}`);
    }
  }
  tables.sparsity = {
    title: 'Update sparsity vs the base (fraction of entries unchanged; bf16 probe, η = 1e-3; bf16-visible = both sides rounded to bf16)',
    columns: ['run', 'sparsity (all)', 'sparsity (2-D linear)', 'bf16-visible sparsity'],
    rows: sparsityRows,
  };

  // 2. Cross-run Jaccard of the RL runs vs the Bernoulli and magnitude-matched baselines.
  if (rlRuns.length >= 2) {
    const loc = await runLocalityPass(D('base'), rlRuns.map(D), { threads: 1 });
    const rows: (string | number)[][] = [['all 2-D linear', loc.all.meanJaccard, loc.all.meanBernoulli, loc.all.meanMagnitudeMatched, loc.all.ratioBernoulli]];
    for (const g of loc.byKind) rows.push([g.group, g.meanJaccard, g.meanBernoulli, g.meanMagnitudeMatched, g.ratioBernoulli]);
    tables.jaccard = {
      title: `Cross-run Jaccard of update masks, RL runs ${rlRuns.join(', ')} (mean off-diagonal)`,
      columns: ['group', 'Jaccard', 'Bernoulli baseline', 'magnitude-matched baseline', 'Jaccard / Bernoulli'],
      rows,
    };
  }

  // 3–4. Principal / low-magnitude overlap vs α, max principal angle and NSS: RL vs SFT.
  const base = openCheckpoint(D('base'));
  try {
    const names = linearNames(base);
    const cmp = ['sft', ...rlRuns].filter((r) => exists(D(r)));
    const overlapRows: Cell[][] = [];
    const spectralRows: (string | number)[][] = [];
    const baseSvd = new Map<string, ReturnType<typeof topU>>();
    const princ = new Map<string, BitMask>(), low = new Map<string, BitMask>();
    const bins = new Map<string, Uint8Array>(), binSizes = new Map<string, Float64Array>();
    for (const n of names) {
      const [rows, cols] = base.info(n).shape as [number, number];
      const w = base.readFloat32(n);
      const b = magnitudeBins(base.readBytes(n), base.info(n).dtype, NUM_BINS);
      bins.set(n, b); binSizes.set(n, magnitudeBinSizes(b, NUM_BINS));
      baseSvd.set(n, topU(w, rows, cols, Math.min(k, rows, cols)));
      for (const a of alphas) {
        princ.set(`${n}@${a}`, await principalMask({ rows, cols, data: w }, k, a));
        low.set(`${n}@${a}`, lowMagnitudeMask({ rows, cols, data: w }, a));
      }
    }
    for (const r of cmp) {
      const t = openCheckpoint(D(r));
      try {
        const masks = new Map<string, BitMask>();
        for (const n of names) masks.set(n, computeUpdateMask(base, t, n, DEFAULT_PROBE));
        for (const a of alphas) {
          const cp: OverlapCounts[] = [], cl: OverlapCounts[] = [];
          for (const n of names) {
            const m = masks.get(n)!, b = bins.get(n)!;
            const cpb = countPerBin(m, b, NUM_BINS);
            const P = princ.get(`${n}@${a}`)!, L = low.get(`${n}@${a}`)!;
            cp.push(overlapCounts(P, referenceBins(P, b, binSizes.get(n)!), m, cpb));
            cl.push(overlapCounts(L, referenceBins(L, b, binSizes.get(n)!), m, cpb));
          }
          const rp = overlapRatios(cp), rl = overlapRatios(cl);
          overlapRows.push([r, a, rp.overlap, rp.magnitudeMatched, rl.overlap, rl.magnitudeMatched, rp.random]);
        }
        const maxAngles: number[] = [], nss: number[] = [];
        for (const n of names) {
          const [rows, cols] = base.info(n).shape as [number, number];
          const b = baseSvd.get(n)!;
          const tu = topU(t.readFloat32(n), rows, cols, b.U.cols);
          const ang = principalAngles(b.U, tu.U);
          maxAngles.push(ang.length ? ang[ang.length - 1]! : 0);
          nss.push(normalizedSpectralShift(b.S, tu.S));
        }
        spectralRows.push([r, meanOf(maxAngles), Math.max(...maxAngles), meanOf(nss), Math.max(...nss)]);
      } finally { t.close(); }
    }
    tables.overlap = {
      title: `Overlap of the update mask with M_princ (rank-${k} reconstruction, top α) and M_low (bottom α by |W0|), pooled over 2-D linear weights; random baseline = α; magnitude-matched = expected overlap given the per-bin change rates over 20 equal-count |W0| bins (SPEC §4)`,
      columns: ['run', 'α', 'overlap M_princ', 'magnitude-matched (M_princ)', 'overlap M_low', 'magnitude-matched (M_low)', 'random baseline'],
      rows: overlapRows,
    };
    tables.spectrum = {
      title: `Top-${k} left singular subspaces: max principal angle (degrees) and NSS over the full spectrum, over 2-D linear weights`,
      columns: ['run', 'mean max angle (°)', 'largest max angle (°)', 'mean NSS', 'largest NSS'],
      rows: spectralRows,
    };
  } finally { base.close(); }

  // 5. Overlap in intervened layers vs untouched: rl-add-s1 (from base) vs rl-add-rotated (from base-rotated).
  if (exists(D('rl-add-s1')) && exists(D('rl-add-rotated')) && exists(D('base-rotated'))) {
    const b0 = openCheckpoint(D('base')), b1 = openCheckpoint(D('base-rotated'));
    const t0 = openCheckpoint(D('rl-add-s1')), t1 = openCheckpoint(D('rl-add-rotated'));
    try {
      const rows: (string | number)[][] = [];
      const intervention = JSON.parse(fs.readFileSync(path.join(D('base-rotated'), 'rlvr_lens', 'intervention.json'), 'utf8')) as { layers: { layer: number; tensors_changed: string[] }[] };
      const touched = new Set(intervention.layers.flatMap((l) => l.tensors_changed));
      const groups = new Map<string, { inter: number; union: number; bern: number[] }>();
      for (const n of linearNames(b0)) {
        const m0 = computeUpdateMask(b0, t0, n), m1 = computeUpdateMask(b1, t1, n);
        const kind = /(q|k|v|o)_proj/.exec(n)?.[1] ?? 'mlp';
        const key = `${touched.has(n) ? 'intervened' : 'untouched'} ${kind === 'mlp' ? 'mlp' : kind + '_proj'}`;
        const g = groups.get(key) ?? { inter: 0, union: 0, bern: [] };
        g.inter += m0.andCount(m1); g.union += m0.orCount(m1);
        g.bern.push(bernoulliJaccard(m0.density(), m1.density()));
        groups.set(key, g);
        void jaccard;
      }
      for (const [key, g] of [...groups].sort(([a], [b]) => (a < b ? -1 : 1))) rows.push([key, g.union ? g.inter / g.union : NaN, meanOf(g.bern)]);
      tables.intervention = {
        title: 'Jaccard between the update masks of rl-add-s1 (from base) and rl-add-rotated (same recipe from base-rotated), intervened tensors vs untouched',
        columns: ['tensors', 'Jaccard', 'Bernoulli baseline (mean over tensors)'],
        rows,
      };
    } finally { b0.close(); b1.close(); t0.close(); t1.close(); }
  }

  // 6–9. Curves from the run logs: reward and KL (masked vs dense, Gate I, adapters).
  const curveRows: (string | number)[][] = [];
  const curve = (label: string, dir: string): void => {
    const log = readLog(dir).filter((r) => r.reward !== undefined);
    if (!log.length) { skipped.push(label); return; }
    const first = meanOf(log.slice(0, 5).map((r) => r.reward!));
    const last = meanOf(log.slice(-5).map((r) => r.reward!));
    const kls = log.map((r) => r.kl_policy_base).filter((x): x is number => x !== undefined);
    const klr = log.map((r) => r.kl_base_policy).filter((x): x is number => x !== undefined);
    const evals = log.filter((r) => r.eval_sampled_acc !== undefined);
    curveRows.push([label, first, last, evals.length ? evals[evals.length - 1]!.eval_sampled_acc! : NaN, kls.length ? kls[kls.length - 1]! : NaN, kls.length ? Math.max(...kls) : NaN, klr.length ? klr[klr.length - 1]! : NaN]);
  };
  for (const r of [...rlRuns, 'rl-add-rotated']) curve(r, D(r));
  if (o.experiments) {
    for (const r of ['rl-add-lr1e-4', 'rl-add-lr10x', 'rl-add-lr100x', 'rl-add-f32', 'rl-add-dense-small']) curve(r, E(r));
    for (const m of ['princ', 'nonprinc', 'low', 'safe', 'random-like-safe']) curve(`rl-add-mask-${m}`, E(`rl-add-mask-${m}`));
    for (const kind of ['lora', 'pissa', 'milora']) for (const rank of [4, 16]) for (const lr of ['0.0003', '0.003']) curve(`rl-add-${kind}-r${rank}-lr${lr}`, E(`rl-add-${kind}-r${rank}-lr${lr}`));
  }
  tables.curves = {
    title: 'RL runs: reward (mean of the first / last 5 steps), final sampled eval accuracy, token-wise KL to the base on sampled responses (KL(π‖π0) last and max, KL(π0‖π) last)',
    columns: ['run', 'reward first 5', 'reward last 5', 'eval sampled acc', 'KL(π‖π0) last', 'KL(π‖π0) max', 'KL(π0‖π) last'],
    rows: curveRows,
  };
  notes.push(`k = ${k} for M_princ and the angle subspaces; α ∈ {${alphas.join(', ')}}; update masks with the bf16 probe (η = 1e-3).`);
  return { tables, skipped: [...new Set(skipped)], notes };
}
