/**
 * Builds a small analysis folder for the report tests from the committed locality
 * fixtures (a tiny Qwen2: base, three RL runs, one run's four checkpoints): the real
 * locality and dynamics probes, the report's maps, and a sparsity document whose numbers
 * are counted here directly from the update masks (the expected values the tests look for).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { writeFileAtomic } from '../src/io/writer.js';
import { isLinearWeight, parseTensorName } from '../src/model/names.js';
import { readUpdateMasksOnce, runLocality } from '../src/probes/locality.js';
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

export function buildSampleAnalysis(dir: string, opts: { withDynamics?: boolean; withLogs?: boolean } = {}): SampleExpectations {
  fs.mkdirSync(dir, { recursive: true });
  const basePath = fixture('locality', 'base');
  const runPaths = ['run-a', 'run-b', 'run-c'].map((r) => fixture('locality', 'runs', r));
  const base = openCheckpoint(basePath);
  const runs = runPaths.map((p) => openCheckpoint(p));
  try {
    const linear = base.names.filter((n) => isLinearWeight(parseTensorName(n), base.info(n).shape));
    // Sparsity, counted directly.
    const sparsity: Record<string, number> = {};
    const models = runs.map((r, ri) => {
      let numel = 0, unchanged = 0, lnumel = 0, lunchanged = 0;
      const byKind = new Map<string, [number, number]>();
      const byLayer = new Map<number, [number, number]>();
      const tensors = base.names.map((name) => {
        const { masks } = readUpdateMasksOnce(base, [r], name);
        const m = masks[0]!;
        const n = m.length, u = n - m.count();
        numel += n; unchanged += u;
        const p = parseTensorName(name);
        if (isLinearWeight(p, m.shape)) { lnumel += n; lunchanged += u; }
        const k = byKind.get(p.kind) ?? [0, 0]; k[0] += n; k[1] += u; byKind.set(p.kind, k);
        if (p.layer !== null) { const l = byLayer.get(p.layer) ?? [0, 0]; l[0] += n; l[1] += u; byLayer.set(p.layer, l); }
        return { name, shape: [...m.shape], numel: n, unchanged: u, sparsity: u / n };
      });
      sparsity[path.basename(runPaths[ri]!)] = unchanged / numel;
      return {
        tuned: runPaths[ri]!,
        overall: { numel, unchanged, sparsity: unchanged / numel },
        linear: { numel: lnumel, unchanged: lunchanged, sparsity: lunchanged / lnumel },
        byKind: [...byKind].map(([kind, [n, u]]) => ({ kind, numel: n, unchanged: u, sparsity: u / n })),
        byLayer: [...byLayer].map(([layer, [n, u]]) => ({ layer, numel: n, unchanged: u, sparsity: u / n })),
        tensors,
      };
    });
    writeFileAtomic(path.join(dir, 'sparsity.json'), toJson(envelope('sparsity', { params: { probe: 'bf16', eta: 1e-3 }, base: basePath, models })));
    const loc = runLocality(base, runs);
    writeFileAtomic(path.join(dir, 'locality.json'), toJson(envelope('locality', { ...loc, consensus: [] })));
    const maps = new MapsCollector(runPaths, linear.length);
    for (const name of linear) maps.add(name, readUpdateMasksOnce(base, runs, name).masks, headDimOf(base));
    writeFileAtomic(path.join(dir, 'maps.json'), toJson(maps.finish()));
    if (opts.withDynamics !== false) {
      const ck = [100, 200, 300, 400].map((s) => openCheckpoint(fixture('locality', 'dynamics', `checkpoint-${s}`)));
      const dyn = runDynamics(base, ck, [100, 200, 300, 400], { profilesFor: () => true });
      ck.forEach((c) => c.close());
      writeFileAtomic(path.join(dir, 'dynamics.json'), toJson(envelope('dynamics', dyn)));
    }
    if (opts.withLogs) {
      fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
      const lines = [0, 1, 2, 3, 4].map((s) => JSON.stringify({ step: s * 10, reward: 0.2 + 0.1 * s, kl: 0.001 * s * s }));
      fs.writeFileSync(path.join(dir, 'logs', 'run-a.jsonl'), lines.join('\n') + '\n');
    }
    writeFileAtomic(path.join(dir, 'manifest.json'), toJson(envelope('manifest', {
      inputs: { base: { path: basePath, dtype: 'BF16' }, tuned: runPaths.map((p) => ({ path: p, role: 'rl' })) },
      params: { probe: 'bf16', eta: 1e-3 },
    })));
    return { sparsity, meanJaccard: loc.all.meanJaccard, linearTensors: linear };
  } finally {
    base.close();
    runs.forEach((r) => r.close());
  }
}
