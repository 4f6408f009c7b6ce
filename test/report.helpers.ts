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

/**
 * Hand-made spectrum.json / principal.json in the per-(tensor, run) record layout the report
 * reads (tensors[].results[i]), deterministic values: exercises those views' rendering.
 */
function writeSpectralDocs(dir: string, runPaths: string[], linear: string[], shapes: Map<string, number[]>): void {
  const env = (kind: string, body: object): string => toJson(envelope(kind, body));
  const k = 8;
  const wave = (i: number, j: number, s: number): number => Number((s * (1 + j) * (1 + 0.3 * Math.sin(i + j))).toFixed(4));
  fs.writeFileSync(path.join(dir, 'spectrum.json'), env('spectrum', {
    params: { k, method: 'hand-made test data' }, inputs: { tuned: runPaths.map((p) => ({ spec: p })) },
    tensors: linear.map((name, ti) => ({
      name, shape: shapes.get(name), layer: parseTensorName(name).layer, kind: parseTensorName(name).kind,
      baseSingularValues: Array.from({ length: k }, (_, j) => Number((2 / (1 + j)).toFixed(4))),
      results: runPaths.map((_, ri) => ({
        anglesU: Array.from({ length: k }, (_, j) => wave(ti + ri, j, 0.05)), anglesV: Array.from({ length: k }, (_, j) => wave(ti + ri + 1, j, 0.04)),
        nss: Number((0.001 * (1 + ri + (ti % 3))).toFixed(4)),
        singularValues: Array.from({ length: k }, (_, j) => Number((2 / (1 + j) * (1 + 0.001 * ri)).toFixed(5))),
      })),
    })),
  }));
  fs.writeFileSync(path.join(dir, 'principal.json'), env('principal', {
    params: { k, alpha: 0.5, method: 'hand-made test data' }, inputs: { tuned: runPaths.map((p) => ({ spec: p })) },
    tensors: linear.map((name, ti) => ({
      name, shape: shapes.get(name), layer: parseTensorName(name).layer, kind: parseTensorName(name).kind, princDensity: 0.5,
      results: runPaths.map((_, ri) => ({ changed: 1000 + 10 * ti, overlapPrinc: 0.4 + 0.01 * ri, magnitudeMatchedPrinc: 0.41, overlapLow: 0.62 - 0.01 * ri, overlapPrincNotLow: 0.2, princNotLowDensity: 0.25 })),
    })),
  }));
}

export async function buildSampleAnalysis(dir: string, opts: { withDynamics?: boolean; withLogs?: boolean; withSpectral?: boolean } = {}): Promise<SampleExpectations> {
  fs.mkdirSync(dir, { recursive: true });
  const basePath = fixture('locality', 'base');
  const runPaths = ['run-a', 'run-b', 'run-c'].map((r) => fixture('locality', 'runs', r));
  const base = openCheckpoint(basePath);
  const linear = base.names.filter((n) => isLinearWeight(parseTensorName(n), base.info(n).shape));
  const headDim = headDimOf(base);
  const shapes = new Map(linear.map((n) => [n, [...base.info(n).shape]]));
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
  if (opts.withSpectral) writeSpectralDocs(dir, runPaths, linear, shapes);
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
