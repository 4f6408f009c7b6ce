import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { executeRun, type RunSpec } from '../src/lab/runs.js';
import { DEFAULT_LAB_CONFIG } from '../src/lab/model.js';
import { listFiles, sha256File } from '../src/lab/reproduce.js';
import { fixture, tempDir } from './helpers.js';

// A pretrain → RL (GRPO with KL, 2 mini-batches) → sparse-free chain small enough to run in
// about a second; its logs and checkpoint hashes are stored in fixtures/lab/golden-run.json.
// Regenerate (only after an intended change of the numerics) with LAB_UPDATE_GOLDEN=1.
const tiny = { ...DEFAULT_LAB_CONFIG, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 4 };
const RECIPE: RunSpec[] = [
  { kind: 'pretrain', name: 'base', config: tiny, seed: 1, mixture: 'add1x1,sub1x1', steps: 30, batchSize: 16, lr: 1e-2, warmup: 2, corruptProb: 0.3 },
  { kind: 'rl', name: 'rl', from: 'base', seed: 2, algo: 'grpo', mixture: 'add1x1', prompts: 16, promptSeed: 3, steps: 2, promptsPerStep: 8, groupSize: 4, miniBatches: 2, lr: 1e-3, saveEvery: 1 },
  { kind: 'rl', name: 'dapo', from: 'base', seed: 4, algo: 'dapo', mixture: 'sub1x1', prompts: 16, promptSeed: 5, steps: 2, promptsPerStep: 8, groupSize: 4, miniBatches: 1, lr: 1e-3, saveDtype: 'F32' },
];

async function runAll(root: string): Promise<Record<string, unknown>> {
  for (const r of RECIPE) await executeRun(root, r);
  const out: Record<string, unknown> = {};
  for (const f of listFiles(root)) {
    out[f] = f.endsWith('log.jsonl') ? fs.readFileSync(path.join(root, f), 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : sha256File(path.join(root, f));
  }
  return out;
}

test('a short deterministic pretrain → GRPO/DAPO chain reproduces the stored numbers and hashes', async () => {
  const got = await runAll(tempDir());
  const golden = fixture('lab', 'golden-run.json');
  if (process.env.LAB_UPDATE_GOLDEN === '1') {
    fs.mkdirSync(path.dirname(golden), { recursive: true });
    fs.writeFileSync(golden, JSON.stringify(got, null, 1) + '\n');
  }
  const want = JSON.parse(fs.readFileSync(golden, 'utf8'));
  assert.deepEqual(got, want);
});

test('the same chain run twice is byte-identical (determinism)', async () => {
  assert.deepEqual(await runAll(tempDir()), await runAll(tempDir()));
});

test('reproduce: worker threads (jobs 2) write the same bytes as in-process (jobs 1), intervention included', async () => {
  const { reproduce } = await import('../src/lab/reproduce.js');
  const recipe: RunSpec[] = [RECIPE[0]!, RECIPE[2]!, { kind: 'intervene', name: 'rot', from: 'base', seed: 5, rotateLayers: '1', permuteLayers: '0' }];
  const a = tempDir(), b = tempDir();
  await reproduce({ out: a, jobs: 1, recipe });
  await reproduce({ out: b, jobs: 2, recipe });
  const sa = fs.readFileSync(path.join(a, 'SHA256SUMS'), 'utf8');
  assert.equal(sa, fs.readFileSync(path.join(b, 'SHA256SUMS'), 'utf8'));
  assert.ok(sa.includes('rot/rlvr_lens/intervention.json'));
  assert.ok(!sa.includes('rot/log.jsonl'), 'the parent log is not copied into the intervened folder');
});
