/** Provenance: tool version, every data file with its hash, the manifest's inputs and every stage's parameters. */
import { type Obj, isObj } from '../access.js';
import type { Analysis } from '../load.js';
import type { Block, Section } from '../model.js';
import { table } from './common.js';
import { genericBlocks } from './generic.js';

function scalars(o: Obj): [string, string][] {
  return Object.entries(o).filter(([, v]) => v === null || typeof v !== 'object').map(([k, v]) => [k, String(v)]);
}

/** Checkpoint records (spec, path, dtypes, content fingerprint) as the probes write them under `inputs`. */
function inputRows(a: Analysis): (string | number | null)[][] {
  const rows: (string | number | null)[][] = [];
  const seen = new Set<string>();
  for (const f of [...a.docs.values()]) {
    const inputs = f.doc.inputs;
    if (!isObj(inputs)) continue;
    const add = (role: string, r: unknown): void => {
      if (!isObj(r)) return;
      const spec = typeof r.spec === 'string' ? r.spec : typeof r.path === 'string' ? r.path : null;
      if (spec === null) return;
      const key = `${role}\u0000${spec}`;
      if (seen.has(key)) return;
      seen.add(key);
      const dtypes = isObj(r.dtypes) ? Object.entries(r.dtypes).map(([k, v]) => `${k}×${String(v)}`).join(', ') : null;
      const files = Array.isArray(r.files) ? r.files.length : null;
      rows.push([role, spec, typeof r.path === 'string' ? r.path : null, typeof r.tensors === 'number' ? r.tensors : null, dtypes, files,
        typeof r.fingerprint === 'string' ? r.fingerprint : typeof r.sha256 === 'string' ? r.sha256 : null, f.file]);
    };
    add('base', inputs.base);
    if (Array.isArray(inputs.tuned)) inputs.tuned.forEach((t, i) => add(`tuned ${i + 1}`, t));
  }
  return rows;
}

export function buildProvenance(a: Analysis): Section {
  const blocks: Block[] = [];
  const inputs = inputRows(a);
  if (inputs.length) blocks.push(table('inputs', 'Input checkpoints', [
    { key: 'role', label: 'role', type: 'text' }, { key: 'spec', label: 'as given', type: 'text' }, { key: 'path', label: 'resolved path', type: 'text' },
    { key: 'tensors', label: 'tensors', type: 'int' }, { key: 'dtypes', label: 'dtypes', type: 'text' }, { key: 'files', label: 'files', type: 'int' },
    { key: 'fingerprint', label: 'content fingerprint (SHA-256)', type: 'text' }, { key: 'from', label: 'recorded in', type: 'text' },
  ], inputs, { caption: typeof a.docs.get('sparsity')?.doc.fingerprintMethod === 'string' ? `Fingerprint: ${String(a.docs.get('sparsity')!.doc.fingerprintMethod)}.` : undefined }));
  const files = [...(a.manifest ? [a.manifest] : []), ...a.docs.values()];
  blocks.push(table('data-files', 'Data files this report was built from', [
    { key: 'file', label: 'file', type: 'text' }, { key: 'kind', label: 'kind', type: 'text' },
    { key: 'version', label: 'tool version', type: 'text' }, { key: 'schema', label: 'schema', type: 'int' },
    { key: 'bytes', label: 'bytes', type: 'int' }, { key: 'sha256', label: 'sha256', type: 'text' },
  ], [
    ...files.map((f) => [f.file, f.kind, String(f.doc.version ?? ''), typeof f.doc.schema === 'number' ? f.doc.schema : null, f.bytes, f.sha256]),
    ...a.logs.map((l) => [l.file, 'run log (jsonl)', '', null, null, l.sha256]),
  ], { caption: 'Rebuild this report from these files alone with: rlvr-lens report <folder>' }));
  if (a.manifest) {
    const m = a.manifest.doc;
    blocks.push({ type: 'kv', title: 'Manifest', items: scalars(m) });
    for (const key of ['inputs', 'base', 'tuned', 'checkpoints']) {
      if (m[key] === undefined) continue;
      const gb = genericBlocks({ [key]: m[key] } as Obj, `manifest-${key}`);
      blocks.push(...gb);
      if (isObj(m[key]) && scalars(m[key] as Obj).length) blocks.push({ type: 'kv', title: key, items: scalars(m[key] as Obj) });
    }
    blocks.push({ type: 'json', title: 'manifest.json (complete)', value: m });
  }
  for (const f of a.docs.values()) {
    const p = f.doc.params ?? f.doc.parameters;
    if (p !== undefined) blocks.push({ type: 'json', title: `${f.file}: parameters`, value: p });
  }
  return { id: 'provenance', title: 'Parameters, inputs and provenance', available: true, blocks };
}
