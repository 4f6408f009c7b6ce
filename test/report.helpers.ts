/**
 * Builds a small analysis folder for the report tests with `rlvr-lens analyze` itself
 * (every stage, report.html last) on the committed locality fixtures (a tiny Qwen2: base,
 * three RL runs, four checkpoints of one run), plus a lab-style run log, and returns
 * expected numbers: sparsity counted independently here (computeUpdateMask per tensor),
 * the other numbers as the probes recorded them (the report must show exactly those).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { isLinearWeight, parseTensorName } from '../src/model/names.js';
import { computeUpdateMask } from '../src/probes/update.js';
import { analyze } from '../src/run/analyze.js';
import { fixture } from './helpers.js';

export interface SampleExpectations {
  /** Run label → overall sparsity (unchanged fraction, all tensors). */
  sparsity: Record<string, number>;
  /** Mean off-diagonal Jaccard over all linear tensors pooled (locality.json). */
  meanJaccard: number;
  /** Jaccard of run-a and run-b pooled over the linear tensors, counted here: Σ|A∩B| / Σ|A∪B|. */
  jaccardAB: number;
  /** Run label → pooled overlap with M_princ (principal.json). */
  principalOverlap: Record<string, number>;
  linearTensors: string[];
}

export async function buildSampleAnalysis(dir: string, opts: { withDynamics?: boolean; withLogs?: boolean } = {}): Promise<SampleExpectations> {
  fs.mkdirSync(dir, { recursive: true });
  const basePath = fixture('locality', 'base');
  const runPaths = ['run-a', 'run-b', 'run-c'].map((r) => fixture('locality', 'runs', r));
  const base = openCheckpoint(basePath);
  const linear = base.names.filter((n) => isLinearWeight(parseTensorName(n), base.info(n).shape));
  const sparsity: Record<string, number> = {};
  for (const p of runPaths) {
    const t = openCheckpoint(p);
    let n = 0, changed = 0;
    for (const name of base.names) { const m = computeUpdateMask(base, t, name); n += m.length; changed += m.count(); }
    sparsity[path.basename(p)] = 1 - changed / n;
    t.close();
  }
  const [ta, tb] = [runPaths[0]!, runPaths[1]!].map((p) => openCheckpoint(p));
  let inter = 0, union = 0;
  for (const name of linear) { const a = computeUpdateMask(base, ta!, name), b = computeUpdateMask(base, tb!, name); inter += a.andCount(b); union += a.orCount(b); }
  ta!.close(); tb!.close();
  base.close();
  if (opts.withLogs) {
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const lines = [0, 1, 2, 3, 4].map((s) => JSON.stringify({ step: s * 10, reward: 0.2 + 0.1 * s, kl: 0.001 * s * s }));
    fs.writeFileSync(path.join(dir, 'logs', 'run-a.jsonl'), lines.join('\n') + '\n');
  }
  const checkpoints = opts.withDynamics === false ? [] : [100, 200, 300, 400].map((s) => fixture('locality', 'dynamics', `checkpoint-${s}`));
  await analyze(basePath, runPaths, dir, { k: 8, threads: 1, cacheDir: null }, { checkpoints });
  const loc = JSON.parse(fs.readFileSync(path.join(dir, 'locality.json'), 'utf8')) as { all: { meanJaccard: number } };
  const pri = JSON.parse(fs.readFileSync(path.join(dir, 'principal.json'), 'utf8')) as { summary: { spec: string; all: { masks: { principal: { overlap: number } } } }[] };
  const principalOverlap = Object.fromEntries(pri.summary.map((s) => [path.basename(s.spec), s.all.masks.principal.overlap]));
  return { sparsity, meanJaccard: loc.all.meanJaccard, jaccardAB: inter / union, principalOverlap, linearTensors: linear };
}
