/** Provenance: tool version, every data file with its hash, the manifest's inputs and every stage's parameters. */
import { type Obj, isObj } from '../access.js';
import type { Analysis } from '../load.js';
import type { Block, Section } from '../model.js';
import { table } from './common.js';
import { genericBlocks } from './generic.js';

function scalars(o: Obj): [string, string][] {
  return Object.entries(o).filter(([, v]) => v === null || typeof v !== 'object').map(([k, v]) => [k, String(v)]);
}

export function buildProvenance(a: Analysis): Section {
  const blocks: Block[] = [];
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
      if (isObj(m[key])) blocks.push({ type: 'kv', title: key, items: scalars(m[key] as Obj) });
    }
    blocks.push({ type: 'json', title: 'manifest.json (complete)', value: m });
  }
  for (const f of a.docs.values()) {
    const p = f.doc.params ?? f.doc.parameters;
    if (p !== undefined) blocks.push({ type: 'json', title: `${f.file}: parameters`, value: p });
  }
  return { id: 'provenance', title: 'Parameters, inputs and provenance', available: true, blocks };
}
