/** Mask and consensus heatmaps (paper Fig. 2, 13) from `maps.json`. */
import { type Obj, arr, isObj, num, pick, str } from '../access.js';
import type { ReportContext } from '../context.js';
import type { HeatmapTensor, Section } from '../model.js';
import { arrOf, specOf } from './common.js';

function pair(x: unknown): [number, number] | null {
  const a = arr(x).map(num);
  return a.length === 2 && a[0] !== null && a[1] !== null ? [a[0], a[1]] : null;
}

export function buildHeatmaps(doc: Obj, ctx: ReportContext): Section {
  const runs = arrOf(doc, 'runs').map((r, i) => ctx.run(specOf(r) ?? `run ${i + 1}`));
  const specs = arrOf(doc, 'runs').map((r, i) => specOf(r) ?? `run ${i + 1}`);
  const tensors: Record<string, HeatmapTensor> = {};
  const src = pick(doc, 'tensors');
  if (isObj(src)) for (const [name, t] of Object.entries(src)) {
    const shape = pair(pick(t, 'shape')), size = pair(pick(t, 'size')), pool = pair(pick(t, 'pool'));
    const images = pick(t, 'runs');
    if (!shape || !size || !pool || !isObj(images)) continue;
    ctx.tensor(name, shape);
    const out: HeatmapTensor = { shape, size, pool, runs: {} };
    specs.forEach((spec, i) => { const b = str(images[spec]); if (b !== null) out.runs[runs[i]!] = b; });
    const hd = num(pick(t, 'headDim'));
    const ha = str(pick(t, 'headAxis'));
    if (hd && (ha === 'rows' || ha === 'cols')) { out.headDim = hd; out.headAxis = ha; }
    tensors[name] = out;
  }
  const pooling = str(pick(pick(doc, 'params'), 'pooling'));
  return { id: 'heatmaps', title: 'Update masks and consensus maps', available: true, blocks: [
    { type: 'heatmap', id: 'masks', title: 'Mask / consensus heatmap of the selected tensor', tensors,
      caption: `Rows are output features, columns input features (PyTorch layout). Consensus C = mean of the ${runs.length} runs’ masks: 1 = changed by every run. ${pooling ? `Pooling: ${pooling}.` : ''} Stripes along rows or columns are paper Fig. 2’s structure.` },
  ] };
}
