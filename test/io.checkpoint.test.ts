/**
 * Checkpoint resolution (file, folder, sharded index, HF cache id), hostile indexes, config
 * handling, and the atomic writers' failure behaviour.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FormatError, RlvrError } from '../src/errors.js';
import { openCheckpoint, resolveHubCacheId } from '../src/io/checkpoint.js';
import { summarizeCheckpoint } from '../src/io/inspect.js';
import { ensureDir, writeCheckpointFiles, writeFileAtomic, writeSafetensors } from '../src/io/writer.js';
import { Rng } from '../src/util/random.js';
import { fixture, repoRoot, tempDir } from './helpers.js';
import { TINY_CONFIG, randomTensor, tinyTensors, validFile } from './io.build.js';

const TINY = fixture('io', 'tiny-sharded');
const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';
const INDEX = 'model.safetensors.index.json';

function code(c: string, file?: string | RegExp, msg?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof RlvrError, `expected RlvrError, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, c, e.message);
    if (typeof file === 'string') assert.equal(e.file, file);
    else if (file) assert.match(e.file ?? '', file);
    if (msg) assert.match(e.message, msg);
    assert.ok(!/[\n\r]/.test(e.userLine()), 'one line');
    return true;
  };
}

/** A copy of the tiny sharded fixture with its index replaced by `index` (object or raw text). */
function tinyWithIndex(index: unknown): string {
  const d = tempDir('rlvr-io-idx-');
  for (const f of [SHARD1, SHARD2, 'config.json']) fs.copyFileSync(path.join(TINY, f), path.join(d, f));
  fs.writeFileSync(path.join(d, INDEX), typeof index === 'string' ? index : JSON.stringify(index));
  return d;
}

function tinyIndex(): { metadata: unknown; weight_map: Record<string, string> } {
  return JSON.parse(fs.readFileSync(path.join(TINY, INDEX), 'utf8')) as { metadata: unknown; weight_map: Record<string, string> };
}

test('golden sharded fixture: names, shards, config, exact values; the generator reproduces it byte for byte', () => {
  const { tensors, values, shardOf } = tinyTensors();
  const src = openCheckpoint(TINY);
  try {
    assert.equal(src.names.length, 27);
    assert.equal(src.names[0], 'lm_head.weight');
    assert.equal(src.names[2], 'model.layers.0.input_layernorm.weight');
    assert.deepEqual(src.files.map((f) => path.basename(f)), [SHARD1, SHARD2]);
    assert.deepEqual(src.metadata, { format: 'pt' });
    assert.equal(src.config?.numLayers, 2);
    assert.equal(src.config?.numKvHeads, 1);
    assert.equal(src.config?.headDim, 4);
    for (const t of tensors) {
      const e = src.info(t.name);
      assert.equal(e.dtype, t.dtype);
      assert.deepEqual(e.shape, t.shape);
      assert.equal(path.basename(e.file), shardOf(t.name));
      assert.deepEqual([...src.readFloat32(t.name)], values.get(t.name));
      assert.deepEqual([...src.readFloat64(t.name)], values.get(t.name));
    }
    // Byte-range reads through the checkpoint layer.
    const q = src.readBytes('model.layers.1.self_attn.q_proj.weight', 6, 4);
    assert.deepEqual(q, (tensors.find((t) => t.name === 'model.layers.1.self_attn.q_proj.weight')!.data as Uint8Array).subarray(6, 10));
    assert.throws(() => src.info('nope'), code('E_MISSING_TENSOR'));
  } finally {
    src.close();
  }
  const again = tempDir('rlvr-io-regen-');
  writeCheckpointFiles(again, tensors, { format: 'pt' }, shardOf);
  for (const f of [SHARD1, SHARD2, INDEX]) {
    assert.deepEqual(fs.readFileSync(path.join(again, f)), fs.readFileSync(path.join(TINY, f)), f);
  }
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(TINY, 'config.json'), 'utf8')), TINY_CONFIG);
});

test('single file, folder with model.safetensors, folder with one other .safetensors; config optional', () => {
  const rng = new Rng(5);
  const t = randomTensor(rng, 'model.layers.0.mlp.up_proj.weight', 'F32', [2, 3]);
  const d = tempDir('rlvr-io-single-');
  fs.writeFileSync(path.join(d, 'model.safetensors'), validFile([t]));
  // A file: no config.json next to it → config null (not an error).
  const a = openCheckpoint(path.join(d, 'model.safetensors'));
  assert.equal(a.config, null);
  assert.deepEqual(a.names, [t.name]);
  assert.deepEqual(a.readBytes(t.name), t.data);
  a.close();
  // The folder, with a config.json.
  fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ num_hidden_layers: 3, hidden_size: 6, num_attention_heads: 2 }));
  const b = openCheckpoint(d);
  assert.equal(b.config?.numLayers, 3);
  assert.equal(b.config?.headDim, 3);
  assert.equal(b.root, d);
  b.close();
  // Malformed config.json is a FormatError naming it.
  fs.writeFileSync(path.join(d, 'config.json'), '{"num_hidden_layers": 3,');
  assert.throws(() => openCheckpoint(d), code('E_CONFIG_JSON', path.join(d, 'config.json'), /not valid JSON/));
  fs.writeFileSync(path.join(d, 'config.json'), '[1]');
  assert.throws(() => openCheckpoint(d), code('E_CONFIG_JSON', path.join(d, 'config.json'), /not a JSON object/));
  fs.rmSync(path.join(d, 'config.json'));
  // A folder with a single, differently named .safetensors file.
  const e = tempDir('rlvr-io-other-');
  fs.writeFileSync(path.join(e, 'adapter.safetensors'), validFile([t]));
  const c = openCheckpoint(e);
  assert.deepEqual(c.names, [t.name]);
  c.close();
  // Two files and no index: ambiguous.
  fs.writeFileSync(path.join(e, 'other.safetensors'), validFile([t]));
  assert.throws(() => openCheckpoint(e), code('E_NO_CHECKPOINT', e, /2 \.safetensors files but no model\.safetensors\.index\.json/));
  // Nothing at all.
  const empty = tempDir('rlvr-io-empty-');
  assert.throws(() => openCheckpoint(empty), code('E_NO_CHECKPOINT', empty, /no model\.safetensors/));
  assert.throws(() => openCheckpoint(path.join(empty, 'missing.safetensors')), code('ENOENT', path.join(empty, 'missing.safetensors'), /no such file or folder/));
});

test('hostile or broken indexes are rejected with named codes', () => {
  const wm = tinyIndex().weight_map;
  const outside = tempDir('rlvr-io-outside-');
  fs.copyFileSync(path.join(TINY, SHARD2), path.join(outside, 'x.safetensors'));
  const cases: [string, unknown, string, RegExp][] = [
    ['parent path', { weight_map: { ...wm, 'lm_head.weight': '../x.safetensors' } }, 'E_INDEX_OUTSIDE', /points outside the checkpoint folder/],
    ['nested parent path', { weight_map: { ...wm, 'lm_head.weight': 'a/../../x.safetensors' } }, 'E_INDEX_OUTSIDE', /outside/],
    ['absolute path', { weight_map: { ...wm, 'lm_head.weight': path.join(outside, 'x.safetensors') } }, 'E_INDEX_OUTSIDE', /outside/],
    ['the folder itself', { weight_map: { ...wm, 'lm_head.weight': '.' } }, 'E_INDEX_OUTSIDE', /outside/],
    ['missing shard', { weight_map: { ...wm, 'lm_head.weight': 'model-00003-of-00002.safetensors' } }, 'E_INDEX_MISSING_SHARD', /does not exist/],
    ['tensor absent from its shard', { weight_map: { ...wm, 'lm_head.weight': SHARD1 } }, 'E_INDEX_MISSING_TENSOR', /"lm_head\.weight" is not in shard model-00001-of-00002/],
    ['extra tensor not in any shard', { weight_map: { ...wm, 'ghost.weight': SHARD2 } }, 'E_INDEX_MISSING_TENSOR', /ghost/],
    ['weight_map array', { weight_map: [SHARD1] }, 'E_INDEX_WEIGHT_MAP', /no weight_map object/],
    ['weight_map string', { weight_map: SHARD1 }, 'E_INDEX_WEIGHT_MAP', /weight_map/],
    ['no weight_map', { metadata: {} }, 'E_INDEX_WEIGHT_MAP', /weight_map/],
    ['index is null', 'null', 'E_INDEX_WEIGHT_MAP', /weight_map/],
    ['empty weight_map', { weight_map: {} }, 'E_INDEX_WEIGHT_MAP', /empty/],
    ['shard not a string', { weight_map: { ...wm, 'lm_head.weight': 2 } }, 'E_INDEX_WEIGHT_MAP', /not a file name/],
    ['empty shard name', { weight_map: { ...wm, 'lm_head.weight': '' } }, 'E_INDEX_WEIGHT_MAP', /not a file name/],
    ['invalid JSON', '{"weight_map": {', 'E_INDEX_JSON', /not valid JSON/],
    ['invalid JSON with a newline', '{\n"weight_map": }\n', 'E_INDEX_JSON', /not valid JSON/],
  ];
  for (const [what, index, c, msg] of cases) {
    const d = tinyWithIndex(index);
    assert.throws(() => openCheckpoint(d), code(c, path.join(d, INDEX), msg), what);
  }
  // A shard that is a symlink escaping the folder.
  const d = tinyWithIndex({ weight_map: wm });
  fs.rmSync(path.join(d, SHARD2));
  fs.symlinkSync(path.join(outside, 'x.safetensors'), path.join(d, SHARD2));
  assert.throws(() => openCheckpoint(d), code('E_INDEX_OUTSIDE', path.join(d, INDEX), /resolves outside/));
  // A symlink that stays inside the folder is fine.
  fs.rmSync(path.join(d, SHARD2));
  fs.mkdirSync(path.join(d, 'store'));
  fs.copyFileSync(path.join(TINY, SHARD2), path.join(d, 'store', 'blob'));
  fs.symlinkSync(path.join('store', 'blob'), path.join(d, SHARD2));
  const ok = openCheckpoint(d);
  assert.equal(ok.names.length, 27);
  ok.close();
  // A malformed shard: the error names the shard, with the safetensors code.
  const bad = tinyWithIndex({ weight_map: wm });
  fs.appendFileSync(path.join(bad, SHARD1), 'PK');
  assert.throws(() => openCheckpoint(bad), code('E_TRAILING_BYTES', path.join(bad, SHARD1)));
  // Tensors in a shard that the index does not list are not part of the checkpoint.
  const partial = { ...wm };
  delete partial['lm_head.weight'];
  const p = tinyWithIndex({ weight_map: partial });
  const src = openCheckpoint(p);
  assert.equal(src.names.length, 26);
  assert.equal(src.has('lm_head.weight'), false);
  src.close();
});

test('a shard replaced after opening is detected, not misread', () => {
  const d = tinyWithIndex(tinyIndex());
  const src = openCheckpoint(d);
  try {
    // Same tensor names, but lm_head stored as F32: offsets and dtype differ.
    const { tensors } = tinyTensors();
    const shard2 = tensors.filter((t) => tinyIndex().weight_map[t.name] === SHARD2).map((t) =>
      t.name === 'lm_head.weight' ? { ...t, dtype: 'F32' as const, data: new Uint8Array(16 * 8 * 4) } : t);
    writeSafetensors(path.join(d, SHARD2), shard2, { format: 'pt' });
    assert.throws(() => src.readBytes('lm_head.weight'), code('E_CHANGED', path.join(d, SHARD2)));
  } finally {
    src.close();
  }
});

/** A fake hub cache: blobs named by content hash, snapshots holding relative symlinks into
 * them, refs/<branch> holding the commit — as huggingface_hub lays it out. */
function makeHubCache(): { hub: string; repo: string; c1: string; c2: string } {
  const hub = tempDir('rlvr-io-hub-');
  const repo = path.join(hub, 'models--org--tiny');
  const c1 = 'a'.repeat(40), c2 = 'b'.repeat(40);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'));
  let blobN = 0;
  for (const [commit, files] of [[c1, [SHARD1, SHARD2, INDEX, 'config.json']], [c2, [SHARD1, SHARD2, INDEX]]] as const) {
    const snap = path.join(repo, 'snapshots', commit);
    fs.mkdirSync(snap, { recursive: true });
    for (const f of files) {
      const blob = `${(blobN++).toString(16).padStart(8, '0')}deadbeef`;
      fs.copyFileSync(path.join(TINY, f), path.join(repo, 'blobs', blob));
      fs.symlinkSync(path.join('..', '..', 'blobs', blob), path.join(snap, f));
    }
  }
  fs.writeFileSync(path.join(repo, 'refs', 'main'), c1);
  fs.writeFileSync(path.join(repo, 'refs', 'v2'), `${c2}\n`);
  return { hub, repo, c1, c2 };
}

test('Hugging Face cache ids resolve offline: org/name, @branch, @commit, symlinked blobs', () => {
  const { hub, repo, c1, c2 } = makeHubCache();
  const env = { HF_HUB_CACHE: hub, HF_HOME: undefined };
  assert.equal(resolveHubCacheId('org/tiny', env), path.join(repo, 'snapshots', c1));
  assert.equal(resolveHubCacheId('org/tiny@main', env), path.join(repo, 'snapshots', c1));
  assert.equal(resolveHubCacheId('org/tiny@v2', env), path.join(repo, 'snapshots', c2));
  assert.equal(resolveHubCacheId(`org/tiny@${c2}`, env), path.join(repo, 'snapshots', c2));
  assert.equal(resolveHubCacheId('org/other', env), null);
  assert.equal(resolveHubCacheId('not an id', env), null);
  assert.equal(resolveHubCacheId('org/tiny@../../x', env), null);
  assert.equal(resolveHubCacheId('org/tiny@refs//main', env), null);
  assert.throws(() => resolveHubCacheId('org/tiny@v9', env), code('E_HUB_REVISION', repo, /revision "v9" not found/));
  assert.throws(() => resolveHubCacheId(`org/tiny@${'c'.repeat(40)}`, env), code('E_HUB_REVISION', repo));
  // HF_HOME/hub is the fallback location.
  assert.equal(resolveHubCacheId('org/tiny', { HF_HOME: path.dirname(hub) + '/nope' }), null);

  // Through openCheckpoint (reads process.env), including the index check on symlinked blobs.
  const saved = process.env.HF_HUB_CACHE;
  process.env.HF_HUB_CACHE = hub;
  try {
    const src = openCheckpoint('org/tiny');
    assert.equal(src.names.length, 27);
    assert.equal(src.config?.modelType, 'qwen2');
    assert.equal(src.spec, 'org/tiny');
    const { values } = tinyTensors();
    assert.deepEqual([...src.readFloat32('lm_head.weight')], values.get('lm_head.weight'));
    src.close();
    const v2 = openCheckpoint('org/tiny@v2');
    assert.equal(v2.config, null); // that snapshot has no config.json: fine
    v2.close();
    assert.throws(() => openCheckpoint('org/tiny@nope'), code('E_HUB_REVISION', repo));
    assert.throws(() => openCheckpoint('org/absent'), code('ENOENT', 'org/absent', /nor a Hugging Face cache id/));
    // A snapshot symlink pointing outside the repo's blobs is rejected.
    const snap = path.join(repo, 'snapshots', c1);
    const outside = tempDir('rlvr-io-hub-out-');
    fs.copyFileSync(path.join(TINY, SHARD2), path.join(outside, 'evil'));
    fs.rmSync(path.join(snap, SHARD2));
    fs.symlinkSync(path.join(outside, 'evil'), path.join(snap, SHARD2));
    assert.throws(() => openCheckpoint('org/tiny'), code('E_INDEX_OUTSIDE', path.join(snap, INDEX), /resolves outside/));
    // A ref holding something other than a commit hash.
    fs.writeFileSync(path.join(repo, 'refs', 'main'), '../../../etc');
    assert.throws(() => openCheckpoint('org/tiny'), code('E_HUB_REF', path.join(repo, 'refs', 'main')));
    // No refs/main and two snapshots: ambiguous.
    fs.rmSync(path.join(repo, 'refs', 'main'));
    assert.throws(() => openCheckpoint('org/tiny'), code('E_HUB_REVISION', repo, /"main" not found/));
    // ...but with a single snapshot, that one is used.
    fs.rmSync(path.join(repo, 'snapshots', c2), { recursive: true });
    assert.equal(resolveHubCacheId('org/tiny', { HF_HUB_CACHE: hub }), path.join(repo, 'snapshots', c1));
  } finally {
    if (saved === undefined) delete process.env.HF_HUB_CACHE; else process.env.HF_HUB_CACHE = saved;
  }
});

/**
 * Opens `spec` with openCheckpoint in a child process running as an unprivileged user, and
 * returns the error it reports ({code, file, message}) or null when it opened. Used because
 * the tests run as root, for whom chmod 000 does not stop reads.
 */
function openAsNobody(spec: string): { code: string; file: string; message: string } | null | 'unavailable' {
  const here = fileURLToPath(import.meta.url);
  const fromTs = here.endsWith('.ts');
  const mod = pathToFileURL(path.join(repoRoot(), fromTs ? 'src/io/checkpoint.ts' : 'dist/src/io/checkpoint.js')).href;
  const script = `import(${JSON.stringify(mod)}).then((m) => { try { m.openCheckpoint(${JSON.stringify(spec)}).close(); console.log('null'); } ` +
    `catch (e) { console.log(JSON.stringify({ code: e.code, file: e.file, message: e.message, rlvr: e.constructor.name })); } })`;
  const r = spawnSync(process.execPath, [...(fromTs ? ['--import', 'tsx'] : []), '--input-type=module', '-e', script], {
    uid: 65534, gid: 65534, cwd: repoRoot(), encoding: 'utf8', env: { ...process.env, HOME: os.tmpdir() }, timeout: 60_000,
  });
  if (r.status !== 0 || !r.stdout.trim()) return 'unavailable';
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { code: string; file: string; message: string } | null;
}

test('unreadable file or folder: a clean permission error', (t) => {
  const d = tempDir('rlvr-io-perm-');
  fs.chmodSync(d, 0o755);
  const f = path.join(d, 'model.safetensors');
  fs.copyFileSync(path.join(TINY, SHARD1), f);
  fs.chmodSync(f, 0o000);
  let readable = true;
  try { fs.closeSync(fs.openSync(f, 'r')); } catch { readable = false; }
  try {
    if (!readable) {
      assert.throws(() => openCheckpoint(f), code('EACCES', f, /cannot open: permission denied/));
      fs.chmodSync(f, 0o644);
      fs.chmodSync(d, 0o000);
      assert.throws(() => openCheckpoint(d), code('EACCES', d, /permission denied/));
      return;
    }
    // Root reads anyway: check as an unprivileged user in a child process instead.
    const r1 = openAsNobody(f);
    if (r1 === 'unavailable') {
      t.skip('running as root and cannot run a child as an unprivileged user: EACCES not testable here');
      return;
    }
    assert.deepEqual(r1, { code: 'EACCES', file: f, message: 'cannot open: permission denied', rlvr: 'RlvrError' });
    fs.chmodSync(f, 0o644);
    fs.chmodSync(d, 0o700); // owned by root: nobody cannot list or enter it
    const r2 = openAsNobody(d);
    assert.ok(r2 !== null && r2 !== 'unavailable' && r2.code === 'EACCES', JSON.stringify(r2));
  } finally {
    fs.chmodSync(d, 0o755);
    fs.chmodSync(f, 0o644);
  }
});

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.includes('.tmp-'));
}

test('writers: unwritable destinations give one clean error and leave no temp files', () => {
  const d = tempDir('rlvr-io-write-');
  const file = path.join(d, 'plain-file');
  fs.writeFileSync(file, 'x');
  // A destination under a regular file.
  assert.throws(() => writeFileAtomic(path.join(file, 'out.json'), '{}'), code('ENOTDIR', path.join(file, 'out.json'), /cannot write: a path component is not a folder/));
  assert.throws(() => ensureDir(path.join(file, 'sub')), code('ENOTDIR', path.join(file, 'sub'), /cannot write to output folder/));
  assert.throws(() => writeCheckpointFiles(path.join(file, 'ckpt'), [], {}), (e: unknown) => e instanceof RlvrError && /cannot write to output folder/.test(e.message));
  // A destination that is a folder: the rename fails, the temp file is removed.
  fs.mkdirSync(path.join(d, 'is-a-dir'));
  fs.writeFileSync(path.join(d, 'is-a-dir', 'keep'), 'k');
  assert.throws(() => writeFileAtomic(path.join(d, 'is-a-dir'), 'data'), (e: unknown) => e instanceof RlvrError && e.file === path.join(d, 'is-a-dir'));
  assert.deepEqual(leftovers(d), []);
  // A tensor producer that throws: the error passes through unchanged (a bug stays a bug),
  // the old file is untouched, no temp file remains.
  const dest = path.join(d, 'model.safetensors');
  fs.writeFileSync(dest, 'old');
  const boom = new Error('producer failed');
  assert.throws(() => writeSafetensors(dest, [{ name: 'w', dtype: 'U8', shape: [2], data: () => { throw boom; } }]), (e: unknown) => e === boom);
  assert.equal(fs.readFileSync(dest, 'utf8'), 'old');
  assert.deepEqual(leftovers(d), []);
  // Wrong byte count, duplicate names, reserved name, a bad shard name: named errors, nothing written.
  assert.throws(() => writeSafetensors(dest, [{ name: 'w', dtype: 'F32', shape: [2], data: new Uint8Array(4) }]), code('E_WRITE_SIZE', dest, /4 bytes given, F32\[2\] needs 8/));
  assert.throws(() => writeSafetensors(dest, [{ name: 'w', dtype: 'U8', shape: [1], data: new Uint8Array(1) }, { name: 'w', dtype: 'U8', shape: [1], data: new Uint8Array(1) }]), code('E_WRITE_NAME', dest, /duplicate name/));
  assert.throws(() => writeSafetensors(dest, [{ name: '__metadata__', dtype: 'U8', shape: [1], data: new Uint8Array(1) }]), code('E_WRITE_NAME', dest, /reserved/));
  assert.throws(() => writeSafetensors(dest, [{ name: 'w', dtype: 'U8', shape: [-1], data: new Uint8Array(0) }]), code('E_WRITE_SIZE', dest, /bad shape/));
  assert.equal(fs.readFileSync(dest, 'utf8'), 'old');
  for (const bad of ['../evil.safetensors', 'sub/x.safetensors', 'x.bin', INDEX]) {
    const out = path.join(d, 'sharded');
    assert.throws(() => writeCheckpointFiles(out, [{ name: 'w', dtype: 'U8', shape: [1], data: new Uint8Array(1) }], {}, () => bad), code('E_WRITE_NAME', out), bad);
  }
  assert.equal(fs.existsSync(path.join(d, 'evil.safetensors')), false);
  assert.deepEqual(leftovers(d), []);
  // A write that succeeds replaces the old content in one step.
  writeFileAtomic(dest, 'new');
  assert.equal(fs.readFileSync(dest, 'utf8'), 'new');
  assert.deepEqual(leftovers(d), []);
});

test('summarizeCheckpoint: totals, per-dtype and per-kind groups, shard sizes, relative paths', () => {
  const src = openCheckpoint(TINY);
  try {
    const s = summarizeCheckpoint(src);
    assert.equal(s.numTensors, 27);
    // 2 × (8+64+8+32+4+32+4+64+8+96+96+96) + 128 + 8 + 128
    assert.equal(s.totalParams, 2 * 512 + 264);
    assert.equal(s.totalBytes, 2656); // = the index's total_size
    assert.deepEqual(s.byDtype, { BF16: { tensors: 22, params: 1248, bytes: 2496 }, F32: { tensors: 5, params: 40, bytes: 160 } });
    assert.equal(s.byKind.norm?.tensors, 5);
    assert.equal(s.byKind.bias?.tensors, 6);
    assert.equal(s.layersInNames, 2);
    assert.deepEqual(s.shards.map((f) => [f.file, f.tensors, f.size]), [
      [SHARD1, 13, fs.statSync(path.join(TINY, SHARD1)).size],
      [SHARD2, 14, fs.statSync(path.join(TINY, SHARD2)).size],
    ]);
    assert.equal(s.config?.numHeads, 2);
    const lm = s.tensors.find((t) => t.name === 'lm_head.weight')!;
    assert.deepEqual(lm, { name: 'lm_head.weight', dtype: 'BF16', shape: [16, 8], numel: 128, bytes: 256, layer: null, kind: 'lm_head', file: SHARD2 });
  } finally {
    src.close();
  }
});

test('FormatError subclasses RlvrError and names the file (sanity for the CLI contract)', () => {
  const e = new FormatError('/x/y.safetensors', 'E_TOO_SMALL', 'file is shorter than the 8-byte header length (3 bytes)');
  assert.ok(e instanceof RlvrError, 'subclass');
  assert.equal(e.userLine(), '/x/y.safetensors: file is shorter than the 8-byte header length (3 bytes)');
});
