/**
 * One function per figure type. Each takes a plain data interface (so any probe's output,
 * or a JSON file, can feed it) and returns a Figure: its size, a DOM-free draw function
 * over Canvas2D, and the data behind it as a Table (written as CSV next to the PNG).
 *
 * Paper figures covered: update-mask and consensus heatmaps (Fig. 2), row/column update
 * ratios over steps with head boundaries (Figs. 3, 12–14), Jaccard matrix (Table 2),
 * overlap vs random baseline per layer (Fig. 5), singular values and principal angles base
 * vs tuned (Fig. 4 left), max angle / NSS across layers (Fig. 4 right), sparsity per
 * module and layer, change rate vs binade (Gate III), sparsity over steps.
 */
import type { Table } from '../output.js';
import {
  type Canvas2D, type ColorMap, type LegendItem, PALETTE, type Rect, THEME, bandScale, bestLegendCorner, blues, cellScale, drawAxes, drawCells,
  drawColorBar, drawFrame, drawGroupedBars, drawHeatmapImage, drawLegend, drawLegendRow, drawLine, drawStep, drawVLines, extent, frameHeight,
  legendRows, legendSize, linearScale,
  logScale, viridis,
} from './chart.js';

export interface Figure {
  /** Figure type, e.g. "mask", "jaccard". */
  kind: string;
  width: number;
  height: number;
  title: string;
  caption: string;
  draw(ctx: Canvas2D): void;
  /** The numbers plotted. */
  data: Table;
}

const fmt = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');


function seriesColor(i: number, n: number, sequential: boolean): string {
  if (!sequential) return PALETTE[i % PALETTE.length]!;
  const c = viridis(n <= 1 ? 0.85 : 0.92 * (i / (n - 1)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// ---------------------------------------------------------------------------------------
// Heatmaps of one tensor (mask, consensus)
// ---------------------------------------------------------------------------------------

export interface TensorHeatmapData {
  /** Tensor name. */
  name: string;
  /** Grid of values (pooled or full resolution), row-major; rows = output features. */
  grid: { rows: number; cols: number; values: ArrayLike<number>; pool: [number, number]; sourceShape: [number, number] };
  /** What the values are, for the colour bar. */
  valueLabel: string;
  title: string;
  /** Extra caption text (probe parameters, runs, ...); the pooling sentence is added. */
  note?: string;
  vmin?: number;
  vmax?: number;
  colormap?: 'blues' | 'viridis';
}

/** Describes the pooling of a grid in words (for captions). */
export function poolingSentence(g: TensorHeatmapData['grid'], what: string): string {
  const [R, C] = g.sourceShape;
  const [p, q] = g.pool;
  if (p === 1 && q === 1) return `Full resolution: ${R}×${C} entries, one cell per entry; colour = ${what}.`;
  return `Pooled ${R}×${C} → ${g.rows}×${g.cols}: each cell is the mean of ${what} over a ${p}×${q} block of entries (edge blocks smaller).`;
}

export function tensorHeatmapFigure(d: TensorHeatmapData): Figure {
  const g = d.grid;
  const cmap: ColorMap = d.colormap === 'viridis' ? viridis : blues;
  const vmin = d.vmin ?? 0, vmax = d.vmax ?? 1;
  const target = 720;
  const s = Math.max(1, Math.floor(target / Math.max(g.rows, g.cols)));
  const imgW = g.cols * s, imgH = g.rows * s;
  const caption = `${poolingSentence(g, d.valueLabel)} Rows = output features, columns = input features (PyTorch [out, in]).${d.note ? ' ' + d.note : ''}`;
  const width = Math.max(720, imgW + 100 + 170);
  const height = frameHeight({ width, title: d.title, caption, bottomMargin: 58 }, imgH);
  const draw = (ctx: Canvas2D): void => {
    const [r] = drawFrame(ctx, { width, height, title: d.title, caption, rightMargin: 170, leftMargin: 84 });
    const scale = Math.max(1, Math.min(s, cellScale(g.rows, g.cols, r!.w, r!.h)));
    const img = drawHeatmapImage(ctx, r!.x, r!.y, g, scale, cmap, vmin, vmax);
    const [R, C] = g.sourceShape;
    const xs = linearScale(0, C, img.x, img.x + img.w, { nice: false, count: 6 });
    const ys = linearScale(0, R, img.y, img.y + img.h, { nice: false, count: 6 });
    drawAxes(ctx, img, { x: xs, y: ys, xLabel: 'input feature (column index)', yLabel: 'output feature (row index)', grid: false });
    ctx.save(); ctx.strokeStyle = THEME.axis; ctx.lineWidth = 1; ctx.strokeRect(img.x - 0.5, img.y - 0.5, img.w + 1, img.h + 1); ctx.restore();
    drawColorBar(ctx, { x: img.x + img.w + 24, y: img.y, w: 18, h: Math.min(img.h, 360) }, cmap, vmin, vmax, d.valueLabel);
  };
  const columns = ['row_block', 'col_block', 'row_start', 'col_start', 'value'];
  const rows: (number | null)[][] = [];
  for (let i = 0; i < g.rows; i++) for (let j = 0; j < g.cols; j++) {
    const v = g.values[i * g.cols + j]!;
    rows.push([i, j, i * g.pool[0], j * g.pool[1], Number.isFinite(v) ? v : null]);
  }
  return { kind: 'heatmap', width, height, title: d.title, caption, draw, data: { columns, rows } };
}

// ---------------------------------------------------------------------------------------
// Annotated matrices (Jaccard, sparsity per layer × module)
// ---------------------------------------------------------------------------------------

export interface MatrixFigureData {
  title: string;
  caption: string;
  rowLabels: string[];
  colLabels: string[];
  /** values[i][j]; NaN/null drawn grey with "–". */
  values: (number | null)[][];
  valueLabel: string;
  xLabel: string;
  yLabel: string;
  vmin?: number;
  vmax?: number;
  digits?: number;
  colormap?: 'blues' | 'viridis';
}

export function matrixFigure(d: MatrixFigureData): Figure {
  const nr = d.rowLabels.length, nc = d.colLabels.length;
  const cw = Math.max(26, Math.min(110, Math.floor(760 / Math.max(1, nc))));
  const ch = Math.max(14, Math.min(110, Math.floor(620 / Math.max(1, nr))));
  const longRow = Math.max(...d.rowLabels.map((l) => l.length), 1);
  const left = Math.max(80, Math.min(260, longRow * 8 + 40));
  const width = Math.max(640, left + nc * cw + 200);
  const caption = d.caption;
  const bottomMargin = d.colLabels.some((l) => l.length * 7.5 > cw) ? 40 + Math.min(120, Math.max(...d.colLabels.map((l) => l.length)) * 6) : 64;
  const height = frameHeight({ width, title: d.title, caption, bottomMargin }, nr * ch);
  const flat = d.values.flat().map((v) => (v === null ? NaN : v));
  const [lo, hi] = extent(flat);
  const vmin = d.vmin ?? lo, vmax = d.vmax ?? (hi === lo ? lo + 1 : hi);
  const cmap = d.colormap === 'blues' ? blues : viridis;
  const digits = d.digits ?? 3;
  const draw = (ctx: Canvas2D): void => {
    const [r] = drawFrame(ctx, { width, height, title: d.title, caption, rightMargin: 170, leftMargin: left, bottomMargin });
    const w = Math.min(r!.w, nc * cw), h = Math.min(r!.h, nr * ch);
    const area: Rect = { x: r!.x, y: r!.y, w, h };
    drawCells(ctx, area, { rows: nr, cols: nc, values: flat }, cmap, vmin, vmax, (v) => v.toFixed(digits));
    const xs = bandScale(d.colLabels, area.x, area.x + area.w, 40);
    const ys = bandScale(d.rowLabels, area.y, area.y + area.h, 40);
    const rotate = d.colLabels.some((l) => l.length * 7.5 > xs.bandwidth);
    drawAxes(ctx, area, { x: xs, y: ys, xLabel: d.xLabel, yLabel: d.yLabel, grid: false, rotateXTicks: rotate });
    drawColorBar(ctx, { x: area.x + area.w + 24, y: area.y, w: 18, h: Math.max(Math.min(area.h, 200), Math.min(area.h, 360)) }, cmap, vmin, vmax, d.valueLabel);
  };
  const rows = d.rowLabels.map((rl, i) => [rl, ...d.colLabels.map((_, j) => { const v = d.values[i]![j]; return v === null || v === undefined || !Number.isFinite(v) ? null : v; })]);
  return { kind: 'matrix', width, height, title: d.title, caption, draw, data: { columns: [d.yLabel, ...d.colLabels], rows } };
}

export interface JaccardFigureData {
  /** Tensor or group the matrix is for. */
  what: string;
  runLabels: string[];
  matrix: number[][];
  meanJaccard: number;
  meanBernoulli: number;
  meanMagnitudeMatched: number;
  note?: string;
}

export function jaccardFigure(d: JaccardFigureData): Figure {
  const caption = `Cross-run Jaccard J = |A∩B|/|A∪B| of bf16 update masks for ${d.what}. Mean off-diagonal ${fmt(d.meanJaccard)}; ` +
    `independent-Bernoulli baseline pq/(p+q−pq) ${fmt(d.meanBernoulli)} (ratio ${fmt(d.meanJaccard / d.meanBernoulli, 2)}); ` +
    `magnitude-matched baseline (20 equal-count |W0| bins) ${fmt(d.meanMagnitudeMatched)} (ratio ${fmt(d.meanJaccard / d.meanMagnitudeMatched, 2)}).${d.note ? ' ' + d.note : ''}`;
  const f = matrixFigure({
    title: `Cross-run Jaccard of update masks — ${d.what}`, caption,
    rowLabels: d.runLabels, colLabels: d.runLabels, values: d.matrix, valueLabel: 'Jaccard', xLabel: 'run', yLabel: 'run',
    vmin: 0, vmax: 1, digits: 3,
  });
  return { ...f, kind: 'jaccard' };
}

// ---------------------------------------------------------------------------------------
// Line charts
// ---------------------------------------------------------------------------------------

export interface LineSeries { label: string; x: ArrayLike<number>; y: ArrayLike<number>; color?: string; dash?: number[]; markers?: boolean; width?: number }

export interface LinePanel {
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  logY?: boolean;
  /** Force y range. */
  yMin?: number;
  yMax?: number;
  /** Dashed vertical markers (data x). */
  vlines?: number[];
  /** Step chart instead of polyline. */
  step?: boolean;
  /** Colour series along a sequential map (e.g. training steps) instead of categories. */
  sequential?: boolean;
  legend?: 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left' | 'auto' | 'right-outside' | 'none';
  /** Integer x ticks only (layers, binades). */
  integerX?: boolean;
  /** Legend entries instead of one per series (e.g. a style key). */
  legendItems?: LegendItem[];
}

function legendItems(p: LinePanel): LegendItem[] {
  if (p.legendItems) return p.legendItems;
  let items: LegendItem[] = p.series.map((s, i) => ({ label: s.label, color: s.color ?? seriesColor(i, p.series.length, !!p.sequential), dash: s.dash }));
  if (items.length > 12) { // long sequences: first, a few middle, last
    const keep = new Set([0, Math.floor(items.length / 3), Math.floor((2 * items.length) / 3), items.length - 1]);
    items = items.filter((_, i) => keep.has(i));
  }
  if (p.vlines && p.vlines.length > 0) items.push({ label: 'head boundary', color: '#888888', dash: [5, 4] });
  return items;
}

/** A figure of 1..n side-by-side line panels. */
export function linePanelsFigure(kind: string, title: string, caption: string, panels: LinePanel[], size: { width?: number; height?: number } = {}): Figure {
  const width = size.width ?? (panels.length === 1 ? 960 : 560 * panels.length);
  const topMargin = panels.some((p) => p.subtitle) ? 14 : 0;
  const outside = panels.filter((p) => p.legend === 'right-outside');
  const rightMargin = outside.length > 0 ? Math.max(...outside.map((p) => legendSize(legendItems(p)).w)) + 30 : undefined;
  const height = size.height ?? frameHeight({ width, title, caption, topMargin }, 430);
  const draw = (ctx: Canvas2D): void => {
    const rects = drawFrame(ctx, { width, height, title, caption, panels: panels.length, topMargin, rightMargin });
    panels.forEach((p, k) => {
      const r = rects[k]!;
      const [x0, x1] = extent(p.series.flatMap((s) => [...Array.from(s.x)]));
      const ys = p.series.flatMap((s) => Array.from(s.y)).filter((v) => Number.isFinite(v) && (!p.logY || v > 0));
      let [y0, y1] = extent(ys);
      if (p.yMin !== undefined) y0 = p.yMin;
      if (p.yMax !== undefined) y1 = p.yMax;
      if (!p.logY && p.yMin === undefined && y0 > 0 && y0 < 0.35 * y1) y0 = 0;
      const xPad = p.step ? 0.5 : 0;
      const xs = linearScale(x0 - xPad, x1 + xPad, r.x, r.x + r.w, { nice: false, count: 8 });
      if (p.integerX) xs.ticks = xs.ticks.filter((t) => Number.isInteger(t.v)).map((t) => ({ v: t.v, label: String(t.v) }));
      const yScale = p.logY ? logScale(Math.max(y0, 1e-12), y1, r.y + r.h, r.y) : linearScale(y0, y1, r.y + r.h, r.y, { count: 6 });
      drawAxes(ctx, r, { x: xs, y: yScale, xLabel: p.xLabel, yLabel: p.yLabel, subtitle: p.subtitle });
      if (p.vlines) drawVLines(ctx, r, xs, p.vlines);
      const points: [number, number][] = [];
      p.series.forEach((s, i) => {
        const style = { color: s.color ?? seriesColor(i, p.series.length, !!p.sequential), dash: s.dash, markers: s.markers, width: s.width };
        if (p.step) drawStep(ctx, r, xs, yScale, s.x, s.y, style); else drawLine(ctx, r, xs, yScale, s.x, s.y, style);
        // sample the drawn polyline densely so the legend avoids lines, not just vertices
        for (let j = 0; j < s.x.length; j++) {
          if (!Number.isFinite(s.y[j]!)) continue;
          const x1 = xs.map(s.x[j]!), y1 = yScale.map(s.y[j]!);
          points.push([x1, y1]);
          if (j + 1 < s.x.length && Number.isFinite(s.y[j + 1]!)) {
            const x2 = xs.map(s.x[j + 1]!), y2 = yScale.map(s.y[j + 1]!);
            const steps = Math.min(50, Math.ceil(Math.hypot(x2 - x1, y2 - y1) / 6));
            for (let q = 1; q < steps; q++) points.push([x1 + ((x2 - x1) * q) / steps, y1 + ((y2 - y1) * q) / steps]);
          }
        }
      });
      if (p.legend !== 'none') {
        const items = legendItems(p);
        const where = !p.legend || p.legend === 'auto' ? bestLegendCorner(r, legendSize(items), points) : p.legend;
        drawLegend(ctx, r, items, where);
      }
    });
  };
  // Long-format data: panel, series, x, y.
  const rows: (string | number | null)[][] = [];
  panels.forEach((p, k) => p.series.forEach((s) => {
    for (let i = 0; i < s.x.length; i++) rows.push([p.subtitle ?? String(k), s.label, s.x[i]!, Number.isFinite(s.y[i]!) ? s.y[i]! : null]);
  }));
  return { kind, width, height, title, caption, draw, data: { columns: ['panel', 'series', 'x', 'y'], rows } };
}

export interface RatioCurvesData {
  tensor: string;
  axis: 'row' | 'col';
  steps: number[];
  /** Smoothed profile per step (same length each). */
  profiles: ArrayLike<number>[];
  /** Head boundaries along this axis ([] when none or not applicable). */
  headBoundaries: number[];
  headDim?: number | null;
  note?: string;
}

/** Row (ρ_i) or column (κ_j) update ratios over training steps, head boundaries dashed. */
export function ratioCurvesFigure(d: RatioCurvesData): Figure {
  const sym = d.axis === 'row' ? 'ρ_i' : 'κ_j';
  const idx = d.axis === 'row' ? 'output feature i (row)' : 'input feature j (column)';
  const series: LineSeries[] = d.profiles.map((p, t) => ({ label: `step ${d.steps[t]}`, x: Array.from({ length: p.length }, (_, i) => i), y: p, width: 1.6 }));
  const caption = `${d.axis === 'row' ? 'Row' : 'Column'} update ratio ${sym}(t) = fraction of entries of ${d.axis === 'row' ? 'row i' : 'column j'} changed vs the base at step t (bf16-aware probe), smoothed by a centered moving average of window 3 (ends: mean of the 2 available points). ` +
    (d.headBoundaries.length > 0 ? `Dashed lines: attention-head boundaries every ${d.headDim ?? '?'} ${d.axis === 'row' ? 'rows' : 'columns'}. ` : '') +
    `Colour runs from early (dark) to late (yellow) steps.${d.note ? ' ' + d.note : ''}`;
  return linePanelsFigure('ratios', `${d.axis === 'row' ? 'Row' : 'Column'} update ratios over training — ${d.tensor}`, caption, [{
    xLabel: idx, yLabel: `${sym} (update ratio, smoothed)`, series, sequential: true, vlines: d.headBoundaries, legend: 'right-outside',
  }]);
}

export interface SparsityStepsData {
  steps: number[];
  series: { label: string; sparsity: number[] }[];
  note?: string;
}

export function sparsityStepsFigure(d: SparsityStepsData): Figure {
  const caption = `bf16 update sparsity (fraction of entries NOT changed vs the base, η = 1e-3 relative rule = bitwise bf16 compare) at each checkpoint, pooled over all tensors of each module kind.${d.note ? ' ' + d.note : ''}`;
  return linePanelsFigure('sparsity-steps', 'Update sparsity over training', caption, [{
    xLabel: 'training step', yLabel: 'sparsity (unchanged fraction)',
    series: d.series.map((s) => ({ label: s.label, x: d.steps, y: s.sparsity, markers: true, dash: s.label === 'all' ? [6, 3] : undefined, color: s.label === 'all' ? '#000000' : undefined })),
    legend: 'auto',
  }]);
}

export interface ChangeRateFigureData {
  group: string;
  runs: string[];
  rows: { binade: number | null; entries: number; rate: number[] }[];
  note?: string;
}

/** Changed fraction per binade of |W0| (Gate III), one line per run, plus entry share. */
export function changeRateFigure(d: ChangeRateFigureData): Figure {
  const total = d.rows.reduce((s, r) => s + r.entries, 0);
  const rows = d.rows.filter((r) => r.binade !== null && r.entries >= 1e-4 * total);
  const dropped = d.rows.filter((r) => r.binade !== null).length - rows.length;
  const xs = rows.map((r) => r.binade!);
  const zeros = d.rows.find((r) => r.binade === null);
  const caption = `Fraction of entries changed by each run, per binade e = floor(log2|w0|) of the base weight (${d.group}). Right: share of entries per binade. ` +
    (zeros ? `${zeros.entries} exact zeros excluded from the plot (in the CSV). ` : '') +
    (dropped > 0 ? `${dropped} sparsely populated binades (< 0.01% of entries each) not plotted (in the CSV). ` : '') +
    `In bf16 an update below ~2^-9·|w0| rounds away (Gate III), so large-magnitude entries change less often.${d.note ? ' ' + d.note : ''}`;
  const fig = linePanelsFigure('changerate', `Change rate vs magnitude of the base weight — ${d.group}`, caption, [
    { subtitle: 'change rate per binade', xLabel: 'binade e = floor(log2 |w0|)', yLabel: 'fraction changed', yMin: 0, yMax: 1, integerX: true,
      series: d.runs.map((run, k) => ({ label: shortLabel(run), x: xs, y: rows.map((r) => r.rate[k]!), markers: true })), legend: 'auto' },
    { subtitle: 'entries per binade', xLabel: 'binade e = floor(log2 |w0|)', yLabel: 'share of entries', step: true, integerX: true,
      series: [{ label: 'share of entries', x: xs, y: rows.map((r) => r.entries / total), color: '#555555' }], legend: 'none' },
  ]);
  fig.data = {
    columns: ['binade', 'entries', ...d.runs.map((r) => `rate:${r}`)],
    rows: d.rows.map((r) => [r.binade, r.entries, ...r.rate]),
  };
  return fig;
}

/** Last path component(s) of a checkpoint spec, for legends. */
export function shortLabel(spec: string): string {
  const parts = spec.replace(/\/+$/, '').split(/[\\/]/);
  const last = parts.pop() ?? spec;
  return /^(model|.*\.safetensors)$/.test(last) && parts.length > 0 ? `${parts.pop()}/${last}` : last;
}

// ---------------------------------------------------------------------------------------
// Bars
// ---------------------------------------------------------------------------------------

export interface GroupedBarsData {
  title: string;
  caption: string;
  categories: string[];
  series: { label: string; values: number[]; color?: string }[];
  xLabel: string;
  yLabel: string;
  yMin?: number;
  yMax?: number;
}

export function groupedBarsFigure(d: GroupedBarsData, kind = 'bars'): Figure {
  const width = Math.max(900, Math.min(1600, 120 + d.categories.length * (11 * d.series.length + 10)));
  const rotate = d.categories.some((c) => c.length > 4) && d.categories.length > 10;
  const bottomMargin = rotate ? 84 : 58;
  const colors = d.series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]!);
  const legend = d.series.map((s, i) => ({ label: s.label, color: colors[i]!, box: true }));
  const topMargin = 6 + 24 * legendRows(legend, width - 16 - 78 - 24 - 16).length;
  const height = frameHeight({ width, title: d.title, caption: d.caption, topMargin, bottomMargin }, 400);
  const draw = (ctx: Canvas2D): void => {
    const [r] = drawFrame(ctx, { width, height, title: d.title, caption: d.caption, bottomMargin, topMargin });
    const xs = bandScale(d.categories, r!.x, r!.x + r!.w, 60);
    const [, hi] = extent(d.series.flatMap((s) => s.values));
    const ys = linearScale(d.yMin ?? 0, d.yMax ?? hi * 1.05, r!.y + r!.h, r!.y, { count: 6 });
    drawAxes(ctx, r!, { x: xs, y: ys, xLabel: d.xLabel, yLabel: d.yLabel, rotateXTicks: rotate });
    drawGroupedBars(ctx, r!, xs, ys, d.series.map((s, i) => ({ values: s.values, color: colors[i]! })));
    drawLegendRow(ctx, r!, legend);
  };
  return {
    kind, width, height, title: d.title, caption: d.caption, draw,
    data: { columns: [d.xLabel, ...d.series.map((s) => s.label)], rows: d.categories.map((c, i) => [c, ...d.series.map((s) => (Number.isFinite(s.values[i]!) ? s.values[i]! : null))]) },
  };
}

/** Plain data for paper Fig. 5: per-layer overlap of a reference mask with the update mask. */
export interface OverlapByLayerData {
  /** e.g. "principal (top 50%, k = 64)". */
  maskName: string;
  layers: (number | string)[];
  /** overlap(M•, M) = |M• ∩ M| / |M| per layer. */
  observed: number[];
  /** Random baseline density(M•) per layer. */
  random: number[];
  /** Optional magnitude-matched baseline per layer. */
  magnitudeMatched?: number[];
  note?: string;
}

export function overlapFigure(d: OverlapByLayerData): Figure {
  const series = [
    { label: 'observed overlap', values: d.observed, color: PALETTE[0] },
    { label: 'random baseline (density of M•)', values: d.random, color: '#aaaaaa' },
  ];
  if (d.magnitudeMatched) series.push({ label: 'magnitude-matched baseline', values: d.magnitudeMatched, color: PALETTE[1] });
  const caption = `Per layer: overlap(M•, M) = |M• ∩ M| / |M| of the ${d.maskName} mask M• with the bf16 update mask M, beside the random baseline density(M•)` +
    (d.magnitudeMatched ? ' and the magnitude-matched baseline (20 equal-count |W0| bins).' : '.') + (d.note ? ' ' + d.note : '');
  return groupedBarsFigure({
    title: `Overlap of updates with the ${d.maskName} mask, per layer`, caption,
    categories: d.layers.map(String), series, xLabel: 'layer', yLabel: 'overlap (fraction of updated entries)', yMin: 0,
  }, 'overlap');
}

/** Per-layer locality: mean cross-run Jaccard vs its two baselines. */
export interface LocalityByLayerData {
  layers: (number | string)[];
  jaccard: number[];
  bernoulli: number[];
  magnitudeMatched: number[];
  runs: number;
  note?: string;
}

export function localityBarsFigure(d: LocalityByLayerData): Figure {
  return groupedBarsFigure({
    title: `Cross-run Jaccard of update masks per layer (${d.runs} runs) vs baselines`,
    caption: `Per layer (all linear weights pooled): mean over run pairs of J = |A∩B|/|A∪B|, the independent-Bernoulli baseline pq/(p+q−pq) and the magnitude-matched baseline (each run changes entries independently with its per-|W0|-bin rate, 20 equal-count bins; E|A∩B|/E|A∪B|).${d.note ? ' ' + d.note : ''}`,
    categories: d.layers.map(String),
    series: [
      { label: 'observed Jaccard', values: d.jaccard, color: PALETTE[0] },
      { label: 'Bernoulli baseline', values: d.bernoulli, color: '#aaaaaa' },
      { label: 'magnitude-matched baseline', values: d.magnitudeMatched, color: PALETTE[1] },
    ],
    xLabel: 'layer', yLabel: 'Jaccard', yMin: 0,
  }, 'locality-layers');
}

// ---------------------------------------------------------------------------------------
// Spectral figures (feed from the principal/spectrum probes)
// ---------------------------------------------------------------------------------------

/** Paper Fig. 4 left: singular values base vs tuned, and principal angles, for chosen tensors. */
export interface SpectrumCurvesData {
  /** One entry per tensor (or layer). */
  tensors: {
    label: string;
    /** σ_i(W0), descending. */
    baseSingularValues: number[];
    /** σ_i(W+), descending. */
    tunedSingularValues: number[];
    /** Principal angles θ_i in degrees, ascending (left or right subspaces). */
    principalAngles: number[];
  }[];
  /** k used for the angles, and which subspace. */
  k: number;
  subspace: 'left' | 'right';
  note?: string;
}

export function spectrumFigure(d: SpectrumCurvesData): Figure {
  const sv: LineSeries[] = [];
  d.tensors.forEach((t, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    sv.push({ label: `${t.label} base`, x: t.baseSingularValues.map((_, j) => j + 1), y: t.baseSingularValues, color });
    sv.push({ label: `${t.label} tuned`, x: t.tunedSingularValues.map((_, j) => j + 1), y: t.tunedSingularValues, color, dash: [6, 4] });
  });
  const ang: LineSeries[] = d.tensors.map((t, i) => ({ label: t.label, x: t.principalAngles.map((_, j) => j + 1), y: t.principalAngles, color: PALETTE[i % PALETTE.length]!, markers: t.principalAngles.length <= 40 }));
  const angLegend = d.tensors.length > 1 ? 'none' as const : undefined; // the left panel's legend names the colours
  const caption = `Left: singular values σ_i of the base (solid) and tuned (dashed) weight, descending, log scale. Right: principal angles θ_i = arccos σ_i(U0_kᵀ U+_k) between the top-${d.k} ${d.subspace} singular subspaces, in degrees, ascending.${d.note ? ' ' + d.note : ''}`;
  return linePanelsFigure('spectrum', 'Spectrum preservation: singular values and principal angles, base vs tuned', caption, [
    {
      subtitle: 'singular values', xLabel: 'index i', yLabel: 'σ_i', series: sv, logY: true,
      legendItems: [
        ...d.tensors.map((t, i) => ({ label: t.label, color: PALETTE[i % PALETTE.length]! })),
        { label: 'base (solid)', color: '#333333' }, { label: 'tuned (dashed)', color: '#333333', dash: [6, 4] },
      ],
    },
    { subtitle: `principal angles (top-${d.k}, ${d.subspace})`, xLabel: 'index i', yLabel: 'θ_i (degrees)', series: ang, yMin: 0, legend: angLegend },
  ]);
}

/** Paper Fig. 4 right: max principal angle and NSS across layers, per module kind. */
export interface LayerSpectralData {
  layers: number[];
  series: { label: string; maxAngle: number[]; nss: number[] }[];
  k: number;
  note?: string;
}

export function layerSpectralFigure(d: LayerSpectralData): Figure {
  const caption = `Per layer and module (colours as in the left legend): the largest principal angle between the top-${d.k} singular subspaces of base and tuned weights (degrees), and the normalized spectral shift NSS = ‖σ(W+) − σ(W0)‖₂ / ‖σ(W0)‖₂ over the top-${d.k} singular values.${d.note ? ' ' + d.note : ''}`;
  return linePanelsFigure('layer-spectral', 'Principal-angle and spectral-shift profile across layers', caption, [
    { subtitle: 'max principal angle', xLabel: 'layer', yLabel: 'max θ (degrees)', yMin: 0, integerX: true, series: d.series.map((s) => ({ label: s.label, x: d.layers, y: s.maxAngle, markers: true })) },
    { subtitle: 'normalized spectral shift', xLabel: 'layer', yLabel: 'NSS', yMin: 0, integerX: true, legend: 'none', series: d.series.map((s) => ({ label: s.label, x: d.layers, y: s.nss, markers: true })) },
  ]);
}

// ---------------------------------------------------------------------------------------
// Sparsity per module and layer
// ---------------------------------------------------------------------------------------

export interface SparsityGridData {
  layers: (number | string)[];
  kinds: string[];
  /** sparsity[layer][kind] in [0, 1] (null where absent). */
  sparsity: (number | null)[][];
  note?: string;
}

export function sparsityGridFigure(d: SparsityGridData): Figure {
  const f = matrixFigure({
    title: 'bf16 update sparsity per layer and module',
    caption: `Fraction of entries NOT changed vs the base (bf16-aware rule |w+ − w0| ≤ 1e-3·max(|w0|,|w+|), i.e. bitwise bf16 compare), per decoder layer (rows) and module (columns).${d.note ? ' ' + d.note : ''}`,
    rowLabels: d.layers.map(String), colLabels: d.kinds, values: d.sparsity,
    valueLabel: 'sparsity', xLabel: 'module', yLabel: 'layer', vmin: 0, vmax: 1, digits: 2, colormap: 'blues',
  });
  return { ...f, kind: 'sparsity' };
}
