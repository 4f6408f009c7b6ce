import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Rng } from '../src/util/random.js';
import { EOS, checkAnswer, encode, decode, makeExample, makeProblem, maxAnswerTokens, parseTask, promptSet, mixture } from '../src/lab/tasks.js';
import { saveLabCheckpoint, loadLabCheckpoint } from '../src/lab/io.js';
import { DEFAULT_LAB_CONFIG, initParams, paramSpecs } from '../src/lab/model.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { tempDir } from './helpers.js';

const resp = (s: string): number[] => encode(s.replace(/\$/g, '.'));

test('checker: exact match up to the end token', () => {
  assert.equal(checkAnswer(resp('95.'), '95'), true);
  assert.equal(checkAnswer(resp('95.123'), '95'), true, 'tokens after the end token are ignored');
  assert.equal(checkAnswer(resp('95'), '95'), false, 'truncated (no end token) is wrong');
  assert.equal(checkAnswer(resp('095.'), '95'), false, 'leading zero is wrong');
  assert.equal(checkAnswer(resp('.'), '95'), false, 'empty answer');
  assert.equal(checkAnswer(resp('.'), ''), true, 'empty expected and empty answer (degenerate)');
  assert.equal(checkAnswer(resp('-0.'), '0'), false, '-0 is not 0');
  assert.equal(checkAnswer(resp('-23.'), '-23'), true, 'negative results');
  assert.equal(checkAnswer(resp('23.'), '-23'), false);
  assert.equal(checkAnswer(resp('9=5.'), '95'), false, 'stray symbols');
  assert.equal(checkAnswer([], '0'), false);
});

test('problems: zero-padded prompts of fixed length, plain answers', () => {
  const t = parseTask('sub2x2');
  const p = makeProblem(t, 7, 58);
  assert.equal(decode(p.prompt), '^07-58=');
  assert.equal(p.answer, '-51');
  assert.equal(maxAnswerTokens(t), 4); // "-99" + end
  assert.equal(maxAnswerTokens(parseTask('mul2x1')), 4); // "891" + end
  assert.equal(maxAnswerTokens(parseTask('add1x1')), 3); // "18" + end
  assert.throws(() => parseTask('div2x2'));
});

test('corrupted examples change exactly one digit, never the sign', () => {
  const rng = new Rng(1);
  const p = makeProblem(parseTask('sub2x2'), 12, 90);
  let corrupted = 0;
  for (let i = 0; i < 200; i++) {
    const ex = makeExample(p, rng, 0.5);
    const s = decode(ex.target);
    assert.equal(ex.target[ex.target.length - 1], EOS);
    assert.equal(s.length, 4);
    assert.equal(s[0], '-');
    let diff = 0;
    for (let j = 0; j < 3; j++) if (s[j] !== '-78'[j]) diff++;
    assert.ok(diff <= 1);
    corrupted += diff;
  }
  assert.ok(corrupted > 60 && corrupted < 140, `corrupted ${corrupted}/200`);
});

test('prompt sets are deterministic under the seed', () => {
  const a = promptSet(mixture('add2x1,sub1x1'), 50, 3).map((p) => decode(p.prompt));
  const b = promptSet(mixture('add2x1,sub1x1'), 50, 3).map((p) => decode(p.prompt));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, promptSet(mixture('add2x1,sub1x1'), 50, 4).map((p) => decode(p.prompt)));
});

test('bf16 save rounds the fp32 master to nearest even (ties, ±0, NaN) and loads back exactly', () => {
  const c = { ...DEFAULT_LAB_CONFIG, hiddenSize: 8, intermediateSize: 8, numLayers: 1, numHeads: 2, numKvHeads: 1, headDim: 4 };
  const p = initParams(c, 1);
  const w = p.get('lm_head.weight')!;
  const vals = [1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -0, 0, NaN, -(1 + 2 ** -8), 65504.5, -Infinity];
  const want = [0x3f80, 0x3f82, 0x3f81, 0x8000, 0x0000, 0x7fc0, 0xbf80, 0x4780, 0xff80];
  vals.forEach((v, i) => { w[i] = v; });
  const dir = path.join(tempDir(), 'ck');
  saveLabCheckpoint(dir, c, p, 'BF16');
  const f = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  const bytes = f.readBytes('lm_head.weight');
  const bits = new Uint16Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  want.forEach((b, i) => assert.equal(bits[i], b, `value ${vals[i]} → 0x${bits[i]!.toString(16)}, want 0x${b.toString(16)}`));
  f.close();
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'qwen2');
  assert.equal(cfg.tie_word_embeddings, false);
  assert.equal(cfg.num_key_value_heads, 1);
  const back = loadLabCheckpoint(dir);
  assert.deepEqual(back.config, c);
  for (const s of paramSpecs(c)) {
    const a = back.params.get(s.name)!;
    // reloading the bf16 checkpoint and saving again is the identity
    const orig = p.get(s.name)!;
    for (let i = 0; i < a.length; i++) {
      if (Number.isNaN(orig[i]!)) { assert.ok(Number.isNaN(a[i]!)); continue; }
      assert.ok(Math.abs(a[i]! - orig[i]!) <= Math.abs(orig[i]!) * 2 ** -8 || (!Number.isFinite(orig[i]!) && a[i] === orig[i]));
    }
  }
});
