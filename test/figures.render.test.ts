/**
 * Figures: every figure type renders to a PNG that decodes at its stated size with real
 * content; chart primitives (ticks, heatmap pixels, colour maps) on exact cases; the chart
 * code stays DOM- and Node-free so a browser can reuse it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { blues, drawHeatmapImage, formatTick, niceTicks, viridis, type Canvas2D } from '../src/report/figures/chart.js';
import {
  type Figure, changeRateFigure, jaccardFigure, layerSpectralFigure, localityBarsFigure, matrixFigure, overlapFigure, ratioCurvesFigure,
  sparsityGridFigure, sparsityStepsFigure, spectrumFigure, tensorHeatmapFigure,
} from '../src/report/figures/figures.js';
import { layerSpectralFromDoc, maskFigure, overlapDataFromPrincipal, spectrumDataFromDoc } from '../src/report/figures/probes.js';
import type { PrincipalDoc, SpectrumDoc } from '../src/run/geometry.js';
import { renderPng, writeFigure } from '../src/report/figures/render.js';
import { BitMask } from '../src/probes/mask.js';
import { DEFAULT_PROBE } from '../src/probes/update.js';
import { poolGrid } from '../src/probes/locality.js';
import { repoRoot, tempDir } from './helpers.js';
import { Rng } from '../src/util/random.js';

async function decode(png: Uint8Array): Promise<{ w: number; h: number; px: Uint8ClampedArray }> {
  const img = await loadImage(Buffer.from(png));
  const c = createCanvas(img.width, img.height);
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  return { w: img.width, h: img.height, px: ctx.getImageData(0, 0, img.width, img.height).data };
}

/** Distinct colours and the fraction of non-white pixels. */
function content(px: Uint8ClampedArray): { colours: number; ink: number } {
  const set = new Set<number>();
  let ink = 0;
  for (let i = 0; i < px.length; i += 4) {
    set.add((px[i]! << 16) | (px[i + 1]! << 8) | px[i + 2]!);
    if (px[i]! < 240 || px[i + 1]! < 240 || px[i + 2]! < 240) ink++;
  }
  return { colours: set.size, ink: ink / (px.length / 4) };
}

const r = new Rng(1);
const seq = <T = number>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

function allFigures(): Record<string, Figure> {
  const mask = BitMask.fromPredicate([96, 160], (i) => r.uniform() < ((Math.floor(i / 160) % 16) < 3 ? 0.9 : 0.2));
  return {
    mask: maskFigure('model.layers.0.mlp.up_proj.weight', mask, 40, DEFAULT_PROBE, 'run-a'),
    consensus: tensorHeatmapFigure({ name: 't', grid: poolGrid(96, 160, mask, 512, 512), valueLabel: 'C', title: 'consensus', colormap: 'viridis' }),
    jaccard: jaccardFigure({ what: 'layer 13 Q', runLabels: ['R1', 'R2', 'R3'], matrix: [[1, 0.58, 0.6], [0.58, 1, 0.55], [0.6, 0.55, 1]], meanJaccard: 0.577, meanBernoulli: 0.43, meanMagnitudeMatched: 0.5 }),
    matrix: matrixFigure({ title: 'm', caption: 'c', rowLabels: ['a', 'b'], colLabels: ['x', 'y', 'z'], values: [[0.1, null, 0.3], [0.4, 0.5, NaN]], valueLabel: 'v', xLabel: 'x', yLabel: 'y' }),
    ratios: ratioCurvesFigure({ tensor: 'q', axis: 'row', steps: [10, 20, 30], profiles: [10, 20, 30].map((s) => seq(128, (i) => (i % 32 < 4 ? 0.6 : 0.2) + s / 300)), headBoundaries: [32, 64, 96], headDim: 32 }),
    sparsitySteps: sparsityStepsFigure({ steps: [1, 2, 3], series: [{ label: 'all', sparsity: [0.9, 0.8, 0.7] }, { label: 'Q', sparsity: [0.95, 0.85, 0.8] }] }),
    changerate: changeRateFigure({ group: 'all', runs: ['a', 'b'], rows: [{ binade: null, entries: 5, rate: [1, 1] }, ...seq(10, (i) => ({ binade: -12 + i, entries: 1000 * (i + 1), rate: [1 - i / 10, 1 - i / 11] }))] }),
    localityBars: localityBarsFigure({ layers: [0, 1, 2], jaccard: [0.5, 0.6, 0.55], bernoulli: [0.3, 0.3, 0.3], magnitudeMatched: [0.45, 0.5, 0.5], runs: 3 }),
    overlap: overlapFigure({ maskName: 'principal', layers: seq(28, (i) => i), observed: seq(28, () => 0.4), random: seq(28, () => 0.5), magnitudeMatched: seq(28, () => 0.42) }),
    spectrum: spectrumFigure({ k: 16, subspace: 'left', tensors: [{ label: 'q', baseSingularValues: seq(16, (i) => 10 / (i + 1)), tunedSingularValues: seq(16, (i) => 10.1 / (i + 1)), principalAngles: seq(16, (i) => i * 0.1) }] }),
    layerSpectral: layerSpectralFigure({ k: 64, layers: [0, 1, 2, 3], series: [{ label: 'q', maxAngle: [1, 2, 1, 2], nss: [0.001, 0.002, 0.001, 0.003] }] }),
    sparsityGrid: sparsityGridFigure({ layers: [0, 1], kinds: ['Q', 'K'], sparsity: [[0.5, 0.6], [0.7, null]] }),
  };
}

test('every figure type renders to a PNG of its stated size with non-trivial content', async () => {
  for (const [name, fig] of Object.entries(allFigures())) {
    const png = renderPng(fig);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${name}: PNG signature`);
    const { w, h, px } = await decode(png);
    assert.deepEqual([w, h], [fig.width, fig.height], name);
    assert.ok(w >= 600 && h >= 250, `${name}: ${w}×${h} is readable size`);
    const c = content(px);
    assert.ok(c.colours >= 20, `${name}: ${c.colours} colours`);
    assert.ok(c.ink > 0.02 && c.ink < 0.9, `${name}: ink ${c.ink}`);
    assert.ok(fig.data.columns.length > 0 && fig.data.rows.length > 0, `${name}: has data`);
  }
});

test('writeFigure writes PNG + CSV atomically; same input → same bytes', () => {
  const dir = tempDir();
  const f = allFigures().jaccard;
  const files = writeFigure(f, path.join(dir, 'j.png'));
  assert.deepEqual(files.map((p) => path.basename(p)), ['j.png', 'j.csv']);
  assert.match(fs.readFileSync(files[1]!, 'utf8'), /^run,R1,R2,R3\nR1,1,0\.58,0\.6\n/);
  writeFigure(f, path.join(dir, 'k.png'));
  assert.ok(fs.readFileSync(path.join(dir, 'j.png')).equals(fs.readFileSync(path.join(dir, 'k.png'))));
  assert.deepEqual(fs.readdirSync(dir).sort(), ['j.csv', 'j.png', 'k.csv', 'k.png']);
});

test('heatmap pixels: each cell is a block of its colour-map colour at the integer scale', async () => {
  const c = createCanvas(40, 20);
  const ctx = c.getContext('2d') as unknown as Canvas2D;
  drawHeatmapImage(ctx, 0, 0, { rows: 2, cols: 4, values: [0, 1, 0.5, NaN, 1, 0, 0, 0] }, 5, blues, 0, 1);
  const px = (c.getContext('2d')).getImageData(0, 0, 40, 20).data;
  const at = (x: number, y: number): number[] => [...px.subarray((y * 40 + x) * 4, (y * 40 + x) * 4 + 3)];
  assert.deepEqual(at(2, 2), [255, 255, 255]); // 0 → white
  assert.deepEqual(at(7, 4), blues(1)); // (0,1) → darkest blue
  assert.deepEqual(at(12, 0), blues(128 / 255));
  assert.deepEqual(at(17, 3), [215, 215, 215]); // NaN → grey
  assert.deepEqual(at(2, 7), blues(1));
  assert.equal(px[(5 * 40 + 25) * 4 + 3], 0); // outside the 20×10 image: never drawn (transparent)
});

test('nice ticks and labels', () => {
  assert.deepEqual(niceTicks(0, 1, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 63, 6).ticks, [0, 20, 40, 60, 80]);
  assert.deepEqual(niceTicks(0, 63, 8).ticks, [0, 10, 20, 30, 40, 50, 60, 70]);
  assert.deepEqual(niceTicks(0.2, 0.73, 5).ticks, [0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(niceTicks(-1, 1, 4).ticks, [-1, -0.5, 0, 0.5, 1]);
  assert.equal(niceTicks(5, 5).ticks.length > 1, true);
  assert.equal(formatTick(0.25, 0.05), '0.25');
  assert.equal(formatTick(20, 10), '20');
  assert.equal(formatTick(0.4, 0.2), '0.4');
  assert.deepEqual(viridis(0), [0x44, 0x01, 0x54]);
  assert.deepEqual(viridis(1), [0xfd, 0xe7, 0x25]);
});

test('the chart and figure modules import nothing from Node or the DOM (reusable in a browser)', () => {
  for (const f of ['chart.ts', 'figures.ts']) {
    const src = fs.readFileSync(path.join(repoRoot(), 'src', 'report', 'figures', f), 'utf8');
    const imports = [...src.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
    for (const i of imports) assert.ok(i.startsWith('./') || i === '../output.js', `${f} imports ${i}`);
    assert.ok(!/\b(document\.|window\.|HTMLCanvasElement|require\()/.test(src), `${f} touches the DOM or Node`);
  }
});

test('adapters: principal and spectrum documents → Fig. 5 / Fig. 4 data (per layer, per module, chosen run)', () => {
  const ratios = (o: number, r: number, m: number) => ({ overlap: o, random: r, magnitudeMatched: m, gapToMagnitude: o - m, density: r });
  const group = (o: number) => ({ tensors: 1, entries: 10, changed: 5, masks: { principal: ratios(o, 0.5, 0.45), low: ratios(0.6, 0.5, 0.55), principalNotLow: ratios(0.2, 0.3, 0.25) } });
  const pdoc = {
    kind: 'principal', params: { k: 64, alpha: 0.5, numBins: 20 },
    summary: [
      { tuned: 0, spec: 'runs/a', all: group(0.4), byKind: [], byLayer: [{ layer: 1, ...group(0.41) }, { layer: 0, ...group(0.39) }] },
      { tuned: 1, spec: 'runs/b', all: group(0.4), byKind: [], byLayer: [{ layer: 0, ...group(0.3) }, { layer: 1, ...group(null as unknown as number) }] },
    ],
  } as unknown as PrincipalDoc;
  const o = overlapDataFromPrincipal(pdoc);
  assert.deepEqual(o.layers, [0, 1]);
  assert.deepEqual(o.observed, [0.39, 0.41]);
  assert.deepEqual(o.random, [0.5, 0.5]);
  assert.deepEqual(o.magnitudeMatched, [0.45, 0.45]);
  assert.match(o.maskName, /top 50% of \|rank-64 reconstruction\|/);
  const o1 = overlapDataFromPrincipal(pdoc, 1, 'low');
  assert.deepEqual(o1.observed, [0.6, 0.6]);
  assert.ok(Number.isNaN(overlapDataFromPrincipal(pdoc, 1).observed[1]!));
  assert.throws(() => overlapDataFromPrincipal(pdoc, 2), RangeError);

  const res = (a: number, nss: number) => ({ identical: false, anglesU: [a / 2, a], anglesV: [a / 4, a / 2], maxAngleU: a, maxAngleV: a / 2, maxAngle: a, nss, nssFull: null, singularValues: [3.1, 1.1], fullSpectrum: null, solve: null });
  const t = (name: string, layer: number, kind: string, a: number) => ({ name, layer, kind, shape: [4, 4], k: 2, base: { singularValues: [3, 1], sigmaNext: 0.5, fullSpectrum: null, solve: null }, results: [res(a, a / 100)] });
  const sdoc = {
    kind: 'spectrum', params: { k: 2 }, summary: [{ spec: 'runs/a' }],
    tensors: [t('model.layers.0.self_attn.q_proj.weight', 0, 'q', 1), t('model.layers.0.mlp.up_proj.weight', 0, 'up', 2), t('model.layers.1.self_attn.q_proj.weight', 1, 'q', 3)],
  } as unknown as SpectrumDoc;
  const ls = layerSpectralFromDoc(sdoc);
  assert.deepEqual(ls.layers, [0, 1]);
  assert.deepEqual(ls.series.map((s) => [s.label, s.maxAngle]), [['Q', [1, 3]], ['MLP-up', [2, NaN]]]);
  assert.deepEqual(ls.series[0]!.nss, [0.01, 0.03]);
  const sp = spectrumDataFromDoc(sdoc, 0, undefined, 'right'); // middle layer of [0, 1] is 0
  assert.deepEqual(sp.tensors.map((x) => [x.label, x.principalAngles]), [['L0 Q', [0.25, 0.5]], ['L0 MLP-up', [0.5, 1]]]);
  assert.deepEqual(sp.tensors[0]!.tunedSingularValues, [3.1, 1.1]);
  for (const f of [overlapFigure(o), layerSpectralFigure(ls), spectrumFigure(sp)]) assert.ok(renderPng(f).byteLength > 1000);
});
