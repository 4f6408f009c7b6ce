import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkSha256Sums, demoRecipe } from '../src/lab/reproduce.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { fixture } from './helpers.js';

// The shipped demo set is exactly what `rlvr-lens lab reproduce` writes: SHA256SUMS is
// written by reproduce, and every shipped file must match it. (The full regeneration check
// is `rlvr-lens lab reproduce --out /tmp/demo --check`, minutes of CPU, kept out of the suite.)
const DEMO = fixture('demo');

test('fixtures/demo matches its SHA256SUMS (no missing, changed or unlisted files)', () => {
  assert.ok(fs.existsSync(path.join(DEMO, 'SHA256SUMS')), 'fixtures/demo/SHA256SUMS is missing');
  assert.deepEqual(checkSha256Sums(DEMO), []);
});

test('every run of the recipe is shipped as a loadable bf16 Qwen2 checkpoint', () => {
  for (const r of demoRecipe()) {
    const dir = path.join(DEMO, r.name);
    const src = openCheckpoint(dir);
    try {
      assert.equal(src.config?.modelType, 'qwen2', r.name);
      assert.equal(src.config?.tieWordEmbeddings, false);
      assert.ok(src.names.includes('model.layers.0.self_attn.q_proj.bias'));
      assert.ok(src.names.includes('lm_head.weight'));
      for (const n of src.names) assert.equal(src.info(n).dtype, 'BF16', `${r.name} ${n}`);
      assert.deepEqual([...src.info('model.layers.0.mlp.down_proj.weight').shape], [src.config!.hiddenSize, src.config!.intermediateSize]);
    } finally { src.close(); }
    if (r.kind !== 'intervene') assert.ok(fs.existsSync(path.join(dir, 'log.jsonl')), `${r.name}/log.jsonl`);
  }
});
