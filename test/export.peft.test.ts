/** LoRA / PiSSA / MiLoRA adapters: hand case, PEFT names/shapes/config, merge tolerance, bad input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildAdapter, loraA, minorTriplets, peftConfig } from '../src/export/peft.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { bf16ToNumber, numberToBf16 } from '../src/io/dtype.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { writeCheckpointFiles } from '../src/io/writer.js';
import { exactSVD } from '../src/linalg/index.js';
import { Rng } from '../src/util/random.js';
import { fixture, tempDir, runCli } from './helpers.js';

const QWEN2 = fixture('interventions', 'qwen2-tiny');

function f32(a: Uint8Array): Float32Array {
  const c = a.slice();
  return new Float32Array(c.buffer, 0, c.byteLength / 4);
}

/** A one-weight F32 checkpoint: model.layers.0.self_attn.q_proj.weight = w (rows × cols). */
function oneWeight(dir: string, w: number[], rows: number, cols: number): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'llama', num_hidden_layers: 1 }));
  writeCheckpointFiles(dir, [{ name: 'model.layers.0.self_attn.q_proj.weight', dtype: 'F32', shape: [rows, cols], data: new Uint8Array(Float32Array.from(w).buffer) }], { format: 'pt' });
  return dir;
}

function readAdapter(dir: string): Map<string, { shape: readonly number[]; values: Float32Array }> {
  const f = SafetensorsFile.open(path.join(dir, 'adapter_model.safetensors'));
  try {
    return new Map([...f.tensors.values()].map((t) => {
      assert.equal(t.dtype, 'F32');
      return [t.name, { shape: t.shape, values: f32(f.readBytes(t.name)) }];
    }));
  } finally { f.close(); }
}

test('hand case: W = diag(3, 1), r = 1, alpha = 2 (scale 2)', async () => {
  const dir = tempDir();
  const base = oneWeight(path.join(dir, 'b'), [3, 0, 0, 1], 2, 2);
  const mod = 'base_model.model.model.layers.0.self_attn.q_proj';
  // PiSSA: top component σ=3, u=v=e1; A = √(3/2)·e1ᵀ, B = √(3/2)·e1; residual diag(0, 1).
  const p = await buildAdapter({ base, out: path.join(dir, 'p'), init: 'pissa', rank: 1, alpha: 2, targets: ['q_proj'], svd: 'exact' });
  const pa = readAdapter(path.join(dir, 'p'));
  const s = Math.fround(Math.sqrt(1.5));
  const A = Array.from(pa.get(mod + '.lora_A.weight')!.values), B = Array.from(pa.get(mod + '.lora_B.weight')!.values);
  const sign = Math.sign(A[0]!); // the sign of a singular pair is arbitrary; B·A is not
  assert.deepEqual(A.map((x) => x * sign), [s, 0]);
  assert.deepEqual(B.map((x) => x * sign), [s, 0]);
  const res = openCheckpoint(path.join(dir, 'p', 'residual_base'));
  const r = Array.from(res.readFloat32('model.layers.0.self_attn.q_proj.weight'));
  res.close();
  assert.ok(Math.abs(r[0]!) < 1e-6 && r[1] === 0 && r[2] === 0 && r[3] === 1, `residual ${r}`);
  assert.deepEqual(p.modules[0]!.singularValues, [3]);
  assert.ok(Math.abs(p.modules[0]!.energyInAdapter - 0.9) < 1e-12);
  // MiLoRA: the minor component σ=1, e2; residual diag(3, 0).
  for (const svd of ['exact', 'fast'] as const) {
    const out = path.join(dir, 'm' + svd);
    const m = await buildAdapter({ base, out, init: 'milora', rank: 1, alpha: 2, targets: ['q_proj'], svd });
    assert.ok(Math.abs(m.modules[0]!.singularValues![0]! - 1) < 1e-12);
    const ma = readAdapter(out);
    const a = Array.from(ma.get(mod + '.lora_A.weight')!.values);
    const sg = Math.sign(a[1]!);
    assert.deepEqual(a.map((x) => x * sg), [0, Math.fround(Math.sqrt(0.5))]);
    const rr = openCheckpoint(path.join(out, 'residual_base'));
    assert.deepEqual(Array.from(rr.readFloat32('model.layers.0.self_attn.q_proj.weight')).map((x) => Math.round(x * 1e6) / 1e6), [3, 0, 0, 0]);
    rr.close();
  }
  // LoRA: B = 0, A ~ U(±1/√2), base path recorded, no residual.
  const l = await buildAdapter({ base, out: path.join(dir, 'l'), init: 'lora', rank: 1, alpha: 2, targets: ['q_proj'], seed: 3 });
  const la = readAdapter(path.join(dir, 'l'));
  assert.deepEqual(Array.from(la.get(mod + '.lora_B.weight')!.values), [0, 0]);
  assert.deepEqual(la.get(mod + '.lora_A.weight')!.values, loraA(1, 2, 3, 'model.layers.0.self_attn.q_proj'));
  assert.equal(l.residualBase, null);
  assert.ok(!fs.existsSync(path.join(dir, 'l', 'residual_base')));
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'l', 'adapter_config.json'), 'utf8')).base_model_name_or_path, path.resolve(base));
});

test('LoRA A init: PEFT kaiming-uniform(a=√5) bound 1/√in, seeded, independent per module', () => {
  const a = loraA(8, 100, 1, 'm.q_proj');
  assert.ok(a.every((x) => Math.abs(x) <= 0.1));
  assert.ok(Math.max(...a) > 0.09 && Math.min(...a) < -0.09, 'spans the interval');
  assert.deepEqual(loraA(8, 100, 1, 'm.q_proj'), a);
  assert.notDeepEqual(loraA(8, 100, 1, 'm.k_proj'), a);
  assert.notDeepEqual(loraA(8, 100, 2, 'm.q_proj'), a);
});

test('minorTriplets (fp64 Gram eigen) = the tail of an exact SVD, tall and wide', () => {
  const rng = new Rng(4);
  for (const [m, n] of [[30, 12], [12, 30]] as const) {
    const w = new Float64Array(m * n);
    rng.fillNormal(w);
    const ex = exactSVD({ rows: m, cols: n, data: w });
    const t = minorTriplets(w, m, n, 3);
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(t.S[c]! - ex.S[12 - 3 + c]!) < 1e-12 * ex.S[0]!, `σ ${t.S[c]} vs ${ex.S[9 + c]}`);
      // same singular vector up to sign: |⟨v, v_exact⟩| = 1
      let d = 0;
      for (let j = 0; j < n; j++) d += t.V.data[j * 3 + c]! * ex.V.data[j * 12 + 9 + c]!;
      assert.ok(Math.abs(Math.abs(d) - 1) < 1e-9, `|<v,v*>| = ${Math.abs(d)}`);
    }
  }
});

test('PiSSA / MiLoRA on the Qwen2-like fixture: PEFT names and shapes, config keys, merge within bf16 half-ulp, other tensors bit-for-bit', async () => {
  const dir = tempDir();
  const targets = ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj'];
  for (const init of ['pissa', 'milora'] as const) {
    const out = path.join(dir, init);
    const r = await buildAdapter({ base: QWEN2, out, init, rank: 4, alpha: 8, targets: init === 'pissa' ? targets : ['all-linear'], seed: 0 });
    assert.deepEqual(r.targets, targets);
    assert.equal(r.modules.length, 21);
    assert.equal(r.scale, 2);
    // Config: the LoraConfig keys, values as documented.
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    assert.deepEqual(cfg, peftConfig({ base: path.join(out, 'residual_base'), rank: 4, alpha: 8, targets, dropout: 0, layers: null }));
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.task_type, 'CAUSAL_LM');
    assert.equal(cfg.init_lora_weights, true);
    // Names and shapes.
    const ad = readAdapter(out);
    assert.equal(ad.size, 42);
    const base = openCheckpoint(QWEN2);
    const resid = openCheckpoint(path.join(out, 'residual_base'));
    try {
      for (const m of r.modules) {
        const [o, i] = m.shape;
        const A = ad.get(`base_model.model.${m.module}.lora_A.weight`)!, B = ad.get(`base_model.model.${m.module}.lora_B.weight`)!;
        assert.deepEqual(A.shape, [4, i]);
        assert.deepEqual(B.shape, [o, 4]);
        // Merge: W = W_res(stored bf16) + scale·B·A within half an ulp of the stored bf16 value (+ fp32 slack).
        const W = base.readFloat64(m.module + '.weight');
        const R = resid.readFloat64(m.module + '.weight');
        for (let x = 0; x < o; x++) {
          for (let y = 0; y < i; y++) {
            let ba = 0;
            for (let c = 0; c < 4; c++) ba += B.values[x * 4 + c]! * A.values[c * i + y]!;
            const err = Math.abs(W[x * i + y]! - (R[x * i + y]! + 2 * ba));
            const st = R[x * i + y]!;
            const ulp = Math.abs(bf16ToNumber(numberToBf16(st) + 1) - st) || 2 ** -133;
            assert.ok(err <= ulp / 2 + 2 ** -22 * Math.abs(st) + 1e-12, `${m.module}[${x},${y}]: ${err} > ulp/2 ${ulp / 2}`);
          }
        }
        assert.ok(m.mergeMaxAbsErrorF32 < 1e-6 * m.maxAbsWeight * 10, `${m.mergeMaxAbsErrorF32}`);
        assert.ok(m.factorRelError < 1e-6);
      }
      // Everything else in the residual base is bit-for-bit the base.
      const targeted = new Set(r.modules.map((m) => m.module + '.weight'));
      for (const n of base.names) {
        const same = Buffer.from(base.readBytes(n)).equals(Buffer.from(resid.readBytes(n)));
        assert.equal(same, !targeted.has(n), n);
      }
    } finally { base.close(); resid.close(); }
    assert.ok(fs.existsSync(path.join(out, 'residual_base', 'model.safetensors.index.json')));
    assert.ok(fs.existsSync(path.join(out, 'residual_base', 'config.json')));
    if (init === 'pissa') assert.ok(r.modules.every((m) => m.energyInAdapter > 0.1));
    else assert.ok(r.modules.every((m) => m.energyInAdapter < 0.05));
  }
});

test('fast and exact decompositions agree (PiSSA top-r, MiLoRA minor r)', async () => {
  const dir = tempDir();
  for (const init of ['pissa', 'milora'] as const) {
    const a = await buildAdapter({ base: QWEN2, out: path.join(dir, init + 'f'), init, rank: 3, alpha: 3, targets: ['v_proj', 'down_proj'], layers: '1', svd: 'fast' });
    const b = await buildAdapter({ base: QWEN2, out: path.join(dir, init + 'e'), init, rank: 3, alpha: 3, targets: ['v_proj', 'down_proj'], layers: [1], svd: 'exact' });
    assert.deepEqual(a.modules.map((m) => m.module), ['model.layers.1.self_attn.v_proj', 'model.layers.1.mlp.down_proj'].sort());
    for (let k = 0; k < a.modules.length; k++) {
      a.modules[k]!.singularValues!.forEach((s, c) => assert.ok(Math.abs(s - b.modules[k]!.singularValues![c]!) < 1e-5 * s, `${s}`));
    }
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, init + 'f', 'adapter_config.json'), 'utf8'));
    assert.deepEqual(cfg.layers_to_transform, [1]);
  }
});

test('bad input: clear errors, nothing written', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'o');
  await assert.rejects(buildAdapter({ base: QWEN2, out, init: 'pissa', rank: 33, alpha: 1, targets: ['v_proj'] }), /--rank 33 is larger than .*v_proj\.weight \(32×64, rank at most 32\)/);
  await assert.rejects(buildAdapter({ base: QWEN2, out, init: 'pissa', rank: 2, alpha: 1, targets: ['qkv_proj'] }), /qkv_proj matches no 2-D weight \(available: down_proj, gate_proj, k_proj, lm_head, o_proj, q_proj, up_proj, v_proj\)/);
  await assert.rejects(buildAdapter({ base: QWEN2, out, init: 'lora', rank: 0, alpha: 1, targets: ['v_proj'] }), /--rank must be a positive integer/);
  await assert.rejects(buildAdapter({ base: QWEN2, out, init: 'lora', rank: 2, alpha: -1, targets: ['v_proj'] }), /--alpha/);
  await assert.rejects(buildAdapter({ base: QWEN2, out, init: 'dora' as 'lora', rank: 2, alpha: 1, targets: ['v_proj'] }), /--init must be one of/);
  await assert.rejects(buildAdapter({ base: QWEN2, out, init: 'lora', rank: 2, alpha: 1, targets: ['v_proj'], layers: '3' }), /layer 3 is out of range/);
  await assert.rejects(buildAdapter({ base: QWEN2, out: QWEN2, init: 'lora', rank: 2, alpha: 1, targets: ['v_proj'], force: true }), /input checkpoint's folder/);
  fs.mkdirSync(out);
  await assert.rejects(buildAdapter({ base: QWEN2, out, init: 'pissa', rank: 2, alpha: 1, targets: ['v_proj'] }), /already exists/);
  assert.deepEqual(fs.readdirSync(out), []);
  assert.deepEqual(fs.readdirSync(dir), ['o']);
});

test('CLI: adapter prints the merge check; a rank larger than the matrix is one line, exit 2', async () => {
  const dir = tempDir();
  const r1 = await runCli(['adapter', '--base', QWEN2, '--init', 'pissa', '--rank', '2', '--targets', 'o_proj', '--layers', '0', '--out', path.join(dir, 'a'), '--quiet', '--no-cache']);
  const r2 = await runCli(['adapter', '--base', QWEN2, '--init', 'milora', '--rank', '65', '--targets', 'q_proj', '--out', path.join(dir, 'b')]);
  const c1 = r1.code, c2 = r2.code;
  const writes = [r1.out, r2.out];
  assert.equal(c1, 0);
  const text = writes.join('');
  assert.match(text, /pissa adapter, r=2, lora_alpha=2 \(scale 1\), 1 modules/);
  assert.match(text, /max \|W − \(W_res \+ scale·B·A\)\|/);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'a', 'adapter_config.json'), 'utf8')).r, 2);
  assert.equal(c2, 2);
  assert.match(text, /rlvr-lens: --rank 65 is larger than model\.layers\.0\.self_attn\.q_proj\.weight \(64×64, rank at most 64\)/);
  assert.ok(!fs.existsSync(path.join(dir, 'b')));
});

test('same inputs and seed → byte-identical adapter files', async () => {
  const dir = tempDir();
  for (const init of ['lora', 'pissa'] as const) {
    const a = path.join(dir, init + '1'), b = path.join(dir, init + '2');
    await buildAdapter({ base: QWEN2, out: a, init, rank: 2, alpha: 4, targets: ['k_proj'], seed: 9, cacheDir: null, residualOut: path.join(dir, init + '-res') });
    await buildAdapter({ base: QWEN2, out: b, init, rank: 2, alpha: 4, targets: ['k_proj'], seed: 9, cacheDir: null, residualOut: path.join(dir, init + '-res'), force: true });
    for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'rlvr_lens_adapter.json']) {
      assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `${init} ${f}`);
    }
  }
  assert.ok(fs.existsSync(path.join(dir, 'pissa-res', 'model.safetensors.index.json')), '--residual-out honoured');
  assert.ok(!fs.existsSync(path.join(dir, 'lora-res')), 'no residual for lora');
});
