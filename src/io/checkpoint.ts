/**
 * One interface over every way a checkpoint arrives: a `.safetensors` file, a folder with
 * `model.safetensors`, a folder with a sharded `model.safetensors.index.json`, or a Hugging
 * Face cache id (`org/name[@revision]`) resolved offline. Shards are opened lazily and
 * tensors are read by name (whole or by byte range); nothing loads a whole checkpoint.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FormatError, RlvrError, fromSystemError } from '../errors.js';
import { type ModelConfig, parseModelConfig } from '../model/config.js';
import { compareTensorNames } from '../model/names.js';
import { type DType, decodeToFloat32, decodeToFloat64 } from './dtype.js';
import { printable } from './printable.js';
import { SafetensorsFile, type TensorInfo } from './safetensors.js';

export interface TensorEntry extends TensorInfo {
  /** Absolute path of the shard that holds it. */
  readonly file: string;
}

/** Read access to a checkpoint's tensors by name. */
export interface TensorSource {
  /** What the user passed, for reports. */
  readonly spec: string;
  /** Absolute path of the file or folder. */
  readonly root: string;
  /** All tensor names, natural-sorted. */
  readonly names: readonly string[];
  readonly config: ModelConfig | null;
  /** Shard files (absolute paths), in natural file-name order. */
  readonly files: readonly string[];
  has(name: string): boolean;
  info(name: string): TensorEntry;
  /** Raw little-endian bytes (optionally a byte range within the tensor). */
  readBytes(name: string, byteOffset?: number, length?: number, into?: Uint8Array): Uint8Array;
  readFloat32(name: string): Float32Array;
  readFloat64(name: string): Float64Array;
  /** `__metadata__` of the first shard. */
  readonly metadata: Readonly<Record<string, string>>;
  close(): void;
}

const INDEX_NAME = 'model.safetensors.index.json';

/** The hub cache folders searched, in order: `$HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`. */
export function hubCacheFolders(env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    env.HF_HUB_CACHE,
    env.HF_HOME ? path.join(env.HF_HOME, 'hub') : undefined,
    path.join(os.homedir(), '.cache', 'huggingface', 'hub'),
  ].filter((x): x is string => !!x);
}

/**
 * Resolves an `org/name[@rev]` id under the HF hub cache, offline, to its snapshot folder.
 * Returns null when `id` is not shaped like a hub id or no cache holds the repo; throws
 * RlvrError (E_HUB_REVISION, E_HUB_REF) when the repo is cached but the revision is not.
 * `rev` is a branch or tag (looked up in `refs/`) or a 40-hex commit.
 */
export function resolveHubCacheId(id: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const m = /^([A-Za-z0-9][\w.-]*)\/([\w.-]+)(?:@([\w./-]+))?$/.exec(id);
  if (!m) return null;
  const [, org, name, rev] = m;
  // A revision is a name inside refs/ or snapshots/, never a path out of them.
  if (rev !== undefined && rev.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) return null;
  if (name === '.' || name === '..') return null;
  for (const hub of hubCacheFolders(env)) {
    const repo = path.join(hub, `models--${org}--${name}`);
    if (!fs.existsSync(repo)) continue;
    const snapshots = path.join(repo, 'snapshots');
    let commit = rev ?? 'main';
    const refFile = path.join(repo, 'refs', commit);
    if (!/^[0-9a-f]{40}$/.test(commit) && fs.existsSync(refFile)) {
      let text: string;
      try {
        text = fs.readFileSync(refFile, 'utf8').trim();
      } catch (e) {
        throw fromSystemError(e, refFile, 'read');
      }
      if (!/^[0-9a-f]{40}$/.test(text)) {
        throw new FormatError(refFile, 'E_HUB_REF', `ref does not hold a 40-hex commit hash (${JSON.stringify(text.slice(0, 60))})`);
      }
      commit = text;
    }
    const snap = path.join(snapshots, commit);
    if (fs.existsSync(snap)) return snap;
    if (!rev && fs.existsSync(snapshots)) {
      let all: string[];
      try {
        all = fs.readdirSync(snapshots).sort();
      } catch (e) {
        throw fromSystemError(e, snapshots, 'read folder');
      }
      if (all.length === 1) return path.join(snapshots, all[0]!);
    }
    throw new RlvrError(`revision ${JSON.stringify(rev ?? 'main')} not found in the hub cache`, { file: repo, code: 'E_HUB_REVISION' });
  }
  return null;
}

/** realpath with a readable error (ELOOP, EACCES, ...). */
function realpath(p: string, file: string): string {
  try {
    return fs.realpathSync(p);
  } catch (e) {
    throw fromSystemError(e, file, 'resolve');
  }
}

function inside(folder: string, p: string): boolean {
  const rel = path.relative(folder, p);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

class Checkpoint implements TensorSource {
  readonly spec: string;
  readonly root: string;
  readonly names: readonly string[];
  readonly config: ModelConfig | null;
  readonly files: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  private readonly entries: Map<string, TensorEntry>;
  private readonly open = new Map<string, SafetensorsFile>();

  constructor(spec: string, root: string, shards: SafetensorsFile[], config: ModelConfig | null, weightMap?: Map<string, string>) {
    this.spec = spec;
    this.root = root;
    this.config = config;
    this.files = shards.map((s) => s.path);
    this.metadata = shards[0]?.metadata ?? {};
    this.entries = new Map();
    for (const s of shards) {
      for (const t of s.tensors.values()) {
        if (weightMap && weightMap.get(t.name) !== s.path) continue; // only what the index assigns here
        if (this.entries.has(t.name)) {
          throw new FormatError(s.path, 'E_DUPLICATE_NAME', `tensor ${JSON.stringify(t.name)} also in ${this.entries.get(t.name)!.file}`);
        }
        this.entries.set(t.name, { ...t, file: s.path });
      }
    }
    this.names = [...this.entries.keys()].sort(compareTensorNames);
  }

  has(name: string): boolean { return this.entries.has(name); }

  info(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new FormatError(this.root, 'E_MISSING_TENSOR', `no tensor named ${JSON.stringify(name)}`);
    return e;
  }

  private shard(file: string): SafetensorsFile {
    let f = this.open.get(file);
    if (!f) {
      f = SafetensorsFile.open(file);
      this.open.set(file, f);
    }
    return f;
  }

  readBytes(name: string, byteOffset = 0, length?: number, into?: Uint8Array): Uint8Array {
    const e = this.info(name);
    const f = this.shard(e.file);
    // Shards are re-opened (and re-validated) lazily; if one was replaced in between, its
    // layout may no longer match what names/info reported, and decoding would be wrong.
    const t = f.get(name);
    if (t.dtype !== e.dtype || t.byteLength !== e.byteLength || t.fileOffset !== e.fileOffset) {
      throw new FormatError(e.file, 'E_CHANGED', `tensor ${JSON.stringify(name)} changed since the checkpoint was opened`);
    }
    return f.readBytes(name, byteOffset, length, into);
  }

  readFloat32(name: string): Float32Array {
    const e = this.info(name);
    return decodeToFloat32(this.readBytes(name), e.dtype);
  }

  readFloat64(name: string): Float64Array {
    const e = this.info(name);
    return decodeToFloat64(this.readBytes(name), e.dtype);
  }

  close(): void {
    for (const f of this.open.values()) f.close();
    this.open.clear();
  }
}

function readConfig(folder: string): ModelConfig | null {
  const p = path.join(folder, 'config.json');
  if (!fs.existsSync(p)) return null;
  let text: string;
  try {
    text = fs.readFileSync(p, 'utf8');
  } catch (e) {
    throw fromSystemError(e, p, 'read');
  }
  return parseModelConfig(p, text);
}

function openIndexed(spec: string, folder: string, indexPath: string): Checkpoint {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(indexPath, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code) throw fromSystemError(e, indexPath, 'read');
    throw new FormatError(indexPath, 'E_INDEX_JSON', `index is not valid JSON (${printable((e as Error).message, 120)})`);
  }
  const wm = (raw as { weight_map?: unknown } | null)?.weight_map;
  if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
    throw new FormatError(indexPath, 'E_INDEX_WEIGHT_MAP', 'index has no weight_map object');
  }
  if (Object.keys(wm).length === 0) throw new FormatError(indexPath, 'E_INDEX_WEIGHT_MAP', 'weight_map is empty');
  const realFolder = realpath(folder, folder);
  // `<cache>/models--org--name/snapshots/<commit>`: its shards are symlinks into `../../blobs`.
  const repoDir = path.dirname(path.dirname(realFolder));
  const hubBlobs = path.basename(path.dirname(realFolder)) === 'snapshots' && path.basename(repoDir).startsWith('models--')
    ? path.join(repoDir, 'blobs') : null;
  const weightMap = new Map<string, string>();
  const shardOrder: string[] = [];
  // Each distinct shard name is checked once (indexes list ~1e3-1e5 tensors over few shards).
  const checked = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new FormatError(indexPath, 'E_INDEX_WEIGHT_MAP', `weight_map entry for ${JSON.stringify(tensor)} is not a file name`);
    }
    const known = checked.get(shard);
    if (known !== undefined) { weightMap.set(tensor, known); continue; }
    const abs = path.resolve(folder, shard);
    if (path.isAbsolute(shard) || !inside(folder, abs)) {
      throw new FormatError(indexPath, 'E_INDEX_OUTSIDE', `shard path ${JSON.stringify(shard)} points outside the checkpoint folder`);
    }
    if (!fs.existsSync(abs)) {
      throw new FormatError(indexPath, 'E_INDEX_MISSING_SHARD', `shard ${JSON.stringify(shard)} does not exist`);
    }
    // Symlinks (as in the HF cache) may point into the blob store; the resolved target must
    // stay inside the folder itself, or, for a hub snapshot, inside its repo's blobs/.
    const real = realpath(abs, indexPath);
    if (!inside(realFolder, real) && !(hubBlobs !== null && inside(hubBlobs, real))) {
      throw new FormatError(indexPath, 'E_INDEX_OUTSIDE', `shard ${JSON.stringify(shard)} resolves outside the checkpoint folder`);
    }
    checked.set(shard, abs);
    weightMap.set(tensor, abs);
    if (!shardOrder.includes(abs)) shardOrder.push(abs);
  }
  // Shards in natural file-name order (model-00001-of-00002 first), not weight_map order.
  shardOrder.sort(compareTensorNames);
  const byPath = new Map<string, SafetensorsFile>();
  for (const s of shardOrder) byPath.set(s, SafetensorsFile.inspect(s));
  const shards = shardOrder.map((s) => byPath.get(s)!);
  for (const [tensor, shard] of weightMap) {
    const f = byPath.get(shard)!;
    if (!f.tensors.has(tensor)) {
      throw new FormatError(indexPath, 'E_INDEX_MISSING_TENSOR', `tensor ${JSON.stringify(tensor)} is not in shard ${path.basename(shard)}`);
    }
  }
  return new Checkpoint(spec, folder, shards, readConfig(folder), weightMap);
}

/**
 * Opens a checkpoint from a user-supplied spec. Throws RlvrError (one line, named file)
 * when it cannot be found or is malformed.
 */
export function openCheckpoint(spec: string): TensorSource {
  let p = path.resolve(spec);
  if (!fs.existsSync(spec)) {
    const hub = resolveHubCacheId(spec);
    if (!hub) throw new RlvrError('no such file or folder (nor a Hugging Face cache id found offline)', { file: spec, code: 'ENOENT' });
    p = hub;
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw fromSystemError(e, spec, 'open');
  }
  if (!st.isDirectory()) { // files, and special files (rejected by the reader as E_NOT_FILE)
    const f = SafetensorsFile.inspect(p);
    return new Checkpoint(spec, p, [f], readConfig(path.dirname(p)));
  }
  try {
    fs.accessSync(p, fs.constants.R_OK | fs.constants.X_OK);
  } catch (e) {
    throw fromSystemError(e, spec, 'read folder');
  }
  const index = path.join(p, INDEX_NAME);
  if (fs.existsSync(index)) return openIndexed(spec, p, index);
  const single = path.join(p, 'model.safetensors');
  if (fs.existsSync(single)) return new Checkpoint(spec, p, [SafetensorsFile.inspect(single)], readConfig(p));
  let listing: string[];
  try {
    listing = fs.readdirSync(p);
  } catch (e) {
    throw fromSystemError(e, spec, 'read folder');
  }
  const any = listing.filter((f) => f.endsWith('.safetensors')).sort();
  if (any.length === 1) return new Checkpoint(spec, p, [SafetensorsFile.inspect(path.join(p, any[0]!))], readConfig(p));
  throw new RlvrError(
    any.length === 0 ? 'folder has no model.safetensors nor model.safetensors.index.json'
      : `folder has ${any.length} .safetensors files but no model.safetensors.index.json`,
    { file: spec, code: 'E_NO_CHECKPOINT' },
  );
}

/** dtype helper re-exported for convenience. */
export type { DType };
