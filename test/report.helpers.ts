/**
 * Builds a small analysis folder for the report tests from the committed locality
 * fixtures (a tiny Qwen2: base, three RL runs, one run's four checkpoints) with the real
 * probes — sparsity (with its update masks feeding the report's maps), locality, dynamics —
 * and returns expected numbers counted independently here (computeUpdateMask per tensor).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { writeFileAtomic } from '../src/io/writer.js';
import { isLinearWeight, parseTensorName } from '../src/model/names.js';
import type { BitMask } from '../src/probes/mask.js';
import { updateSparsity } from '../src/probes/sparsity.js';
import { computeUpdateMask } from '../src/probes/update.js';
import { runLocality } from '../src/probes/locality.js';
import { runDynamics } from '../src/probes/dynamics.js';
import { envelope, toJson } from '../src/report/output.js';
import { MapsCollector, headDimOf } from '../src/report/html/maps.js';
import { fixture } from './helpers.js';

export interface SampleExpectations {
  /** Run label → overall sparsity (unchanged fraction, all tensors). */
  sparsity: Record<string, number>;
  /** Mean off-diagonal Jaccard over all linear tensors pooled. */
  meanJaccard: number;
  linearTensors: string[];
}

export async function buildSampleAnalysis(dir: string, opts: { withDynamics?: boolean; withLogs?: boolean } = {}): Promise<SampleExpectations> {
  fs.mkdirSync(dir, { recursive: true });
  const basePath = fixture('locality', 'base');
  const runPaths = ['run-a', 'run-b', 'run-c'].map((r) => fixture('locality', 'runs', r));
  const base = openCheckpoint(basePath);
  const linear = base.names.filter((n) => isLinearWeight(parseTensorName(n), base.info(n).shape));
  const headDim = headDimOf(base);
  // Expected sparsity, counted directly from the update masks.
  const sparsity: Record<string, number> = {};
  for (const p of runPaths) {
    const t = openCheckpoint(p);
    let n = 0, changed = 0;
    for (const name of base.names) { const m = computeUpdateMask(base, t, name); n += m.length; changed += m.count(); }
    sparsity[path.basename(p)] = 1 - changed / n;
    t.close();
  }
  base.close();

  const maps = new MapsCollector(runPaths, linear.length);
  const pending = new Map<string, BitMask[]>();
  const doc = await updateSparsity(basePath, runPaths, {
    threads: 1,
    onMask: (r, name, mask) => {
      if (!linear.includes(name)) return;
      const ms = pending.get(name) ?? [];
      ms[r] = mask;
      pending.set(name, ms);
      if (ms.filter(Boolean).length === runPaths.length) { maps.add(name, ms, headDim); pending.delete(name); }
    },
  });
  writeFileAtomic(path.join(dir, 'sparsity.json'), toJson(doc));
  writeFileAtomic(path.join(dir, 'maps.json'), toJson(maps.finish()));
  const b2 = openCheckpoint(basePath);
  const tuned = runPaths.map((p) => openCheckpoint(p));
  const loc = runLocality(b2, tuned);
  writeFileAtomic(path.join(dir, 'locality.json'), toJson(envelope('locality', { ...loc, consensus: [], sparsity: undefined })));
  if (opts.withDynamics !== false) {
    const ck = [100, 200, 300, 400].map((s) => fixture('locality', 'dynamics', `checkpoint-${s}`));
    const cks = ck.map((p) => openCheckpoint(p));
    const dyn = runDynamics(b2, cks, [100, 200, 300, 400], { profilesFor: () => true });
    cks.forEach((c) => c.close());
    writeFileAtomic(path.join(dir, 'dynamics.json'), toJson(envelope('dynamics', dyn)));
  }
  b2.close();
  tuned.forEach((t) => t.close());
  if (opts.withLogs) {
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const lines = [0, 1, 2, 3, 4].map((s) => JSON.stringify({ step: s * 10, reward: 0.2 + 0.1 * s, kl: 0.001 * s * s }));
    fs.writeFileSync(path.join(dir, 'logs', 'run-a.jsonl'), lines.join('\n') + '\n');
  }
  writeFileAtomic(path.join(dir, 'manifest.json'), toJson(envelope('manifest', {
    inputs: { base: { path: basePath }, tuned: runPaths.map((p) => ({ path: p, role: 'rl' })) },
  })));
  return { sparsity, meanJaccard: loc.all.meanJaccard, linearTensors: linear };
}
