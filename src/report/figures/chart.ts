/**
 * A small chart library over a minimal Canvas2D-like interface (no DOM, no Node APIs), so
 * the same drawing code renders PNGs in Node (@napi-rs/canvas, see render.ts) and charts in
 * a browser <canvas>. Pieces: nice ticks, linear/log/band scales, axes with labels, title
 * and wrapped caption, legend, line/step/bar marks, dashed vertical markers, heatmaps drawn
 * as image data, annotated cell grids, and colour bars.
 */

/** The subset of CanvasRenderingContext2D the charts use. */
export interface Canvas2D {
  fillStyle: unknown;
  strokeStyle: unknown;
  lineWidth: number;
  font: string;
  textAlign: string;
  textBaseline: string;
  globalAlpha: number;
  save(): void;
  restore(): void;
  translate(x: number, y: number): void;
  rotate(angle: number): void;
  beginPath(): void;
  closePath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  arc(x: number, y: number, r: number, a0: number, a1: number): void;
  rect(x: number, y: number, w: number, h: number): void;
  clip(): void;
  stroke(): void;
  fill(): void;
  fillRect(x: number, y: number, w: number, h: number): void;
  strokeRect(x: number, y: number, w: number, h: number): void;
  fillText(text: string, x: number, y: number): void;
  measureText(text: string): { width: number };
  setLineDash(segments: number[]): void;
  createImageData(w: number, h: number): { data: Uint8ClampedArray; width: number; height: number };
  putImageData(img: { data: Uint8ClampedArray; width: number; height: number }, x: number, y: number): void;
}

export interface Rect { x: number; y: number; w: number; h: number }

// ---------------------------------------------------------------------------------------
// Theme
// ---------------------------------------------------------------------------------------

export const FONT_FAMILY = '"DejaVu Sans", sans-serif';
export const THEME = {
  background: '#ffffff',
  text: '#1a1a1a',
  axis: '#333333',
  grid: '#e3e3e3',
  muted: '#666666',
  titleSize: 19,
  labelSize: 15,
  tickSize: 13,
  captionSize: 13,
  legendSize: 13,
};

/** Categorical colours (Tableau 10), readable on white and distinguishable in print. */
export const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function font(size: number, bold = false): string {
  return `${bold ? 'bold ' : ''}${size}px ${FONT_FAMILY}`;
}

// ---------------------------------------------------------------------------------------
// Colour maps
// ---------------------------------------------------------------------------------------

export type Rgb = [number, number, number];
export type ColorMap = (t: number) => Rgb;

function hex(h: string): Rgb {
  const v = parseInt(h.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function stops(hexes: readonly string[]): ColorMap {
  const cs = hexes.map(hex);
  return (t: number): Rgb => {
    if (!Number.isFinite(t)) return [200, 200, 200];
    const x = Math.min(1, Math.max(0, t)) * (cs.length - 1);
    const i = Math.min(cs.length - 2, Math.floor(x));
    const f = x - i;
    const a = cs[i]!, b = cs[i + 1]!;
    return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
  };
}

/** Perceptually uniform (matplotlib viridis, 9 stops). */
export const viridis: ColorMap = stops(['#440154', '#472d7b', '#3b528b', '#2c728e', '#21918c', '#28ae80', '#5ec962', '#addc30', '#fde725']);
/** White → dark blue, for masks and fractions (0 = white = unchanged). */
export const blues: ColorMap = stops(['#ffffff', '#deebf7', '#9ecae1', '#4292c6', '#2171b5', '#08519c', '#08306b']);

export function rgbCss(c: Rgb): string {
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Relative luminance (sRGB approximation), to pick black or white text on a cell. */
export function luminance(c: Rgb): number {
  return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
}

// ---------------------------------------------------------------------------------------
// Ticks and scales
// ---------------------------------------------------------------------------------------

/** "Nice" tick values (1, 2, 5 × 10^k steps) covering [min, max] with about `count` ticks. */
export function niceTicks(min: number, max: number, count = 5): { ticks: number[]; step: number; min: number; max: number } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) { min = 0; max = 1; }
  if (min === max) { const d = min === 0 ? 1 : Math.abs(min) * 0.1; min -= d; max += d; }
  if (min > max) [min, max] = [max, min];
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return { ticks, step, min: lo, max: hi };
}

/** Tick label with as many decimals as the step needs. */
export function formatTick(v: number, step: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(Math.max(0, Math.min(3, -Math.floor(Math.log10(step)) + Math.floor(Math.log10(a))))).replace('e+', 'e');
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(step % 1 !== 0 && Number((step * 10 ** decimals).toFixed(6)) % 1 !== 0 ? decimals + 1 : decimals);
}

export interface Scale {
  /** Data value → pixel. */
  map(v: number): number;
  ticks: { v: number; label: string }[];
  domain: [number, number];
}

export function linearScale(d0: number, d1: number, r0: number, r1: number, opts: { nice?: boolean; count?: number } = {}): Scale {
  const nt = niceTicks(d0, d1, opts.count ?? 5);
  const lo = opts.nice === false ? d0 : nt.min, hi = opts.nice === false ? d1 : nt.max;
  const span = hi - lo || 1;
  const map = (v: number): number => r0 + ((v - lo) / span) * (r1 - r0);
  const ticks = nt.ticks.filter((t) => t >= lo - 1e-12 * Math.abs(span) && t <= hi + 1e-12 * Math.abs(span)).map((v) => ({ v, label: formatTick(v, nt.step) }));
  return { map, ticks, domain: [lo, hi] };
}

/** Log10 scale; ticks at powers of ten (and 2, 5 × when the range is short). */
export function logScale(d0: number, d1: number, r0: number, r1: number): Scale {
  // Domain: the data range padded by ~10% in log space; ticks at 1 (and 2, 5 on short ranges) × 10^e.
  const a = Math.log10(Math.max(d0, Number.MIN_VALUE)), b = Math.log10(Math.max(d1, Number.MIN_VALUE));
  const padL = Math.max(0.05, (b - a) * 0.05);
  const lo = a - padL, hi = b === a ? a + 1 : b + padL;
  const map = (v: number): number => r0 + ((Math.log10(Math.max(v, 10 ** (lo - 3))) - lo) / (hi - lo)) * (r1 - r0);
  const ticks: { v: number; label: string }[] = [];
  const label = (m: number, e: number): string => (e >= -3 && e <= 4 ? String(Number((m * 10 ** e).toPrecision(3))) : `${m === 1 ? '' : `${m}×`}1e${e}`);
  const mult = hi - lo <= 2.5 ? [1, 2, 5] : [1];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of mult) {
      const lv = Math.log10(m * 10 ** e);
      if (lv >= lo && lv <= hi) ticks.push({ v: m * 10 ** e, label: label(m, e) });
    }
  }
  if (ticks.length < 3) {
    // Less than a decade: linear nice ticks inside the range, placed on the log axis.
    const nt = niceTicks(10 ** lo, 10 ** hi, 5);
    return { map, ticks: nt.ticks.filter((v) => v > 0 && Math.log10(v) >= lo && Math.log10(v) <= hi).map((v) => ({ v, label: formatTick(v, nt.step) })), domain: [10 ** lo, 10 ** hi] };
  }
  return { map, ticks, domain: [10 ** lo, 10 ** hi] };
}

/** Categories as equal bands; `map(i)` is the band centre. */
export function bandScale(labels: readonly string[], r0: number, r1: number, maxLabels = 30): Scale & { bandwidth: number } {
  const n = Math.max(1, labels.length);
  const bw = (r1 - r0) / n;
  const every = Math.max(1, Math.ceil(labels.length / maxLabels));
  return {
    map: (i: number) => r0 + (i + 0.5) * bw,
    ticks: labels.map((label, i) => ({ v: i, label })).filter((_, i) => i % every === 0),
    domain: [0, n - 1],
    bandwidth: bw,
  };
}

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

/** Measures text width at a CSS font; set by the renderer so figures can size themselves exactly. */
export type TextMeasurer = (text: string, font: string) => number;
let measurer: TextMeasurer | null = null;

/** Installs the text measurer used to size figures before drawing (Node: render.ts does it). */
export function setTextMeasurer(m: TextMeasurer | null): void { measurer = m; }

/** Width of text at a font: the installed measurer, else an estimate (DejaVu Sans ≈ 0.6 em). */
export function measureWidth(text: string, f: string): number {
  if (measurer) return measurer(text, f);
  const size = Number(/(\d+(?:\.\d+)?)px/.exec(f)?.[1] ?? 13);
  return text.length * size * (f.startsWith('bold') ? 0.66 : 0.6);
}

function wrapWith(measure: (t: string) => number, text: string, maxWidth: number): string[] {
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(/\s+/).filter(Boolean)) {
      const tryLine = line ? `${line} ${word}` : word;
      if (measure(tryLine) > maxWidth && line) { out.push(line); line = word; } else line = tryLine;
    }
    out.push(line);
  }
  return out;
}

/** Splits text into lines that fit `maxWidth` at the current font. */
export function wrapText(ctx: Canvas2D, text: string, maxWidth: number): string[] {
  return wrapWith((t) => ctx.measureText(t).width, text, maxWidth);
}

/** Same wrapping without a context (for sizing before drawing). */
export function wrapMeasured(text: string, f: string, maxWidth: number): string[] {
  return wrapWith((t) => measureWidth(t, f), text, maxWidth);
}

/** Shortens text with "…" to fit `maxWidth`. */
export function fitText(ctx: Canvas2D, text: string, maxWidth: number): string {
  if (ctx.measureText(text).width <= maxWidth) return text;
  let lo = 0, hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(`…${text.slice(text.length - mid)}`).width <= maxWidth) lo = mid; else hi = mid - 1;
  }
  return `…${text.slice(text.length - lo)}`;
}

export function text(ctx: Canvas2D, s: string, x: number, y: number, o: { size?: number; bold?: boolean; align?: string; baseline?: string; color?: string; rotate?: number } = {}): void {
  ctx.save();
  ctx.font = font(o.size ?? THEME.tickSize, o.bold);
  ctx.fillStyle = o.color ?? THEME.text;
  ctx.textAlign = o.align ?? 'left';
  ctx.textBaseline = o.baseline ?? 'alphabetic';
  if (o.rotate) { ctx.translate(x, y); ctx.rotate(o.rotate); ctx.fillText(s, 0, 0); } else ctx.fillText(s, x, y);
  ctx.restore();
}

// ---------------------------------------------------------------------------------------
// Figure layout: background, title, caption, panels
// ---------------------------------------------------------------------------------------

export interface FrameOptions {
  width: number;
  height: number;
  title: string;
  caption?: string;
  /** Number of side-by-side panels. */
  panels?: number;
  /** Extra room on the right of each panel (legend, colour bar). */
  rightMargin?: number;
  leftMargin?: number;
  bottomMargin?: number;
  topMargin?: number;
}

const PAD = 16;
const TITLE_GAP = 12;
const CAPTION_GAP = 8;

/** Height of the title block and caption block of a frame (matches drawFrame). */
export function frameChrome(o: { width: number; title: string; caption?: string; topMargin?: number }): { top: number; captionH: number } {
  const tl = wrapMeasured(o.title, font(THEME.titleSize, true), o.width - 2 * PAD).length;
  const top = PAD + tl * (THEME.titleSize + 5) + TITLE_GAP + (o.topMargin ?? 0);
  const cl = o.caption ? wrapMeasured(o.caption, font(THEME.captionSize), o.width - 2 * PAD).length : 0;
  return { top, captionH: o.caption ? cl * (THEME.captionSize + 5) + CAPTION_GAP : 0 };
}

/** Canvas height giving a plot area of `plotH` pixels (with the given bottom margin). */
export function frameHeight(o: { width: number; title: string; caption?: string; topMargin?: number; bottomMargin?: number }, plotH: number): number {
  const c = frameChrome(o);
  return Math.ceil(c.top + plotH + (o.bottomMargin ?? 58) + c.captionH + PAD);
}

/** Draws background, title and caption; returns the plot-area rectangle of each panel. */
export function drawFrame(ctx: Canvas2D, o: FrameOptions): Rect[] {
  ctx.save();
  ctx.fillStyle = THEME.background;
  ctx.fillRect(0, 0, o.width, o.height);
  ctx.restore();
  const pad = PAD;
  ctx.font = font(THEME.titleSize, true);
  const titleLines = wrapText(ctx, o.title, o.width - 2 * pad);
  titleLines.forEach((l, i) => text(ctx, l, o.width / 2, pad + THEME.titleSize + i * (THEME.titleSize + 5), { size: THEME.titleSize, bold: true, align: 'center' }));
  const top = pad + titleLines.length * (THEME.titleSize + 5) + TITLE_GAP + (o.topMargin ?? 0);
  let bottom = o.height - pad;
  if (o.caption) {
    ctx.font = font(THEME.captionSize);
    const lines = wrapText(ctx, o.caption, o.width - 2 * pad);
    const lh = THEME.captionSize + 5;
    bottom -= lines.length * lh;
    lines.forEach((l, i) => text(ctx, l, pad, bottom + (i + 1) * lh - 3, { size: THEME.captionSize, color: THEME.muted }));
    bottom -= CAPTION_GAP;
  }
  const n = o.panels ?? 1;
  const left = o.leftMargin ?? 78, right = o.rightMargin ?? 24, below = o.bottomMargin ?? 58;
  const panelW = (o.width - 2 * pad) / n;
  const rects: Rect[] = [];
  for (let i = 0; i < n; i++) {
    const x0 = pad + i * panelW;
    rects.push({ x: Math.round(x0 + left), y: Math.round(top), w: Math.round(panelW - left - right), h: Math.round(bottom - below - top) });
  }
  return rects;
}

// ---------------------------------------------------------------------------------------
// Axes and marks
// ---------------------------------------------------------------------------------------

export interface AxesOptions {
  x: Scale;
  y: Scale;
  xLabel: string;
  yLabel: string;
  grid?: boolean;
  /** Panel title above the plot area. */
  subtitle?: string;
  /** Rotate x tick labels (long category names). */
  rotateXTicks?: boolean;
}

/** Axis lines, ticks, tick labels, axis labels and optional grid for a plot area. */
export function drawAxes(ctx: Canvas2D, r: Rect, o: AxesOptions): void {
  ctx.save();
  if (o.grid !== false) {
    ctx.strokeStyle = THEME.grid;
    ctx.lineWidth = 1;
    for (const t of o.y.ticks) {
      const y = Math.round(o.y.map(t.v)) + 0.5;
      if (y < r.y - 1 || y > r.y + r.h + 1) continue;
      ctx.beginPath(); ctx.moveTo(r.x, y); ctx.lineTo(r.x + r.w, y); ctx.stroke();
    }
  }
  ctx.strokeStyle = THEME.axis;
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(r.x + 0.5, r.y); ctx.lineTo(r.x + 0.5, r.y + r.h + 0.5); ctx.lineTo(r.x + r.w, r.y + r.h + 0.5);
  ctx.stroke();
  let maxYLabel = 0;
  ctx.font = font(THEME.tickSize);
  for (const t of o.y.ticks) {
    const y = o.y.map(t.v);
    if (y < r.y - 1 || y > r.y + r.h + 1) continue;
    ctx.beginPath(); ctx.moveTo(r.x - 5, Math.round(y) + 0.5); ctx.lineTo(r.x, Math.round(y) + 0.5); ctx.stroke();
    text(ctx, t.label, r.x - 8, y, { align: 'right', baseline: 'middle' });
    maxYLabel = Math.max(maxYLabel, ctx.measureText(t.label).width);
  }
  for (const t of o.x.ticks) {
    const x = o.x.map(t.v);
    if (x < r.x - 1 || x > r.x + r.w + 1) continue;
    ctx.beginPath(); ctx.moveTo(Math.round(x) + 0.5, r.y + r.h); ctx.lineTo(Math.round(x) + 0.5, r.y + r.h + 5); ctx.stroke();
    if (o.rotateXTicks) text(ctx, t.label, x + 4, r.y + r.h + 10, { align: 'right', baseline: 'middle', rotate: -Math.PI / 4 });
    else text(ctx, t.label, x, r.y + r.h + 8, { align: 'center', baseline: 'top' });
  }
  text(ctx, o.xLabel, r.x + r.w / 2, r.y + r.h + (o.rotateXTicks ? 52 : 30), { size: THEME.labelSize, align: 'center', baseline: 'top' });
  text(ctx, o.yLabel, r.x - Math.max(34, maxYLabel + 16), r.y + r.h / 2, { size: THEME.labelSize, align: 'center', baseline: 'bottom', rotate: -Math.PI / 2 });
  if (o.subtitle) text(ctx, o.subtitle, r.x + r.w / 2, r.y - 8, { size: THEME.labelSize, bold: true, align: 'center' });
  ctx.restore();
}

export interface LineStyle { color: string; width?: number; dash?: number[]; markers?: boolean; alpha?: number }

/** A polyline through finite points (gaps at NaN), clipped to the plot area. */
export function drawLine(ctx: Canvas2D, r: Rect, x: Scale, y: Scale, xs: ArrayLike<number>, ys: ArrayLike<number>, s: LineStyle): void {
  ctx.save();
  ctx.beginPath(); ctx.rect(r.x, r.y - 1, r.w + 1, r.h + 2); ctx.clip();
  ctx.strokeStyle = s.color;
  ctx.lineWidth = s.width ?? 2;
  ctx.globalAlpha = s.alpha ?? 1;
  ctx.setLineDash(s.dash ?? []);
  ctx.beginPath();
  let pen = false;
  for (let i = 0; i < xs.length; i++) {
    const v = ys[i]!;
    if (!Number.isFinite(v) || !Number.isFinite(xs[i]!)) { pen = false; continue; }
    const px = x.map(xs[i]!), py = y.map(v);
    if (pen) ctx.lineTo(px, py); else { ctx.moveTo(px, py); pen = true; }
  }
  ctx.stroke();
  if (s.markers) {
    ctx.setLineDash([]);
    ctx.fillStyle = s.color;
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(ys[i]!)) continue;
      ctx.beginPath(); ctx.arc(x.map(xs[i]!), y.map(ys[i]!), 3.5, 0, 2 * Math.PI); ctx.fill();
    }
  }
  ctx.restore();
}

/** A step line: value ys[i] held over [xs[i] − ½, xs[i] + ½] (unit-spaced categories). */
export function drawStep(ctx: Canvas2D, r: Rect, x: Scale, y: Scale, xs: ArrayLike<number>, ys: ArrayLike<number>, s: LineStyle): void {
  const px: number[] = [], py: number[] = [];
  for (let i = 0; i < xs.length; i++) { px.push(xs[i]! - 0.5, xs[i]! + 0.5); py.push(ys[i]!, ys[i]!); }
  drawLine(ctx, r, x, y, px, py, s);
}

/** Dashed vertical markers at data x positions (e.g. head boundaries). */
export function drawVLines(ctx: Canvas2D, r: Rect, x: Scale, at: readonly number[], color = '#888888', dash = [5, 4]): void {
  ctx.save();
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.setLineDash(dash);
  for (const v of at) {
    const px = Math.round(x.map(v)) + 0.5;
    if (px < r.x || px > r.x + r.w) continue;
    ctx.beginPath(); ctx.moveTo(px, r.y); ctx.lineTo(px, r.y + r.h); ctx.stroke();
  }
  ctx.restore();
}

/** Grouped bars: one group per category (band), one bar per series. */
export function drawGroupedBars(ctx: Canvas2D, r: Rect, x: Scale & { bandwidth: number }, y: Scale, series: readonly { values: ArrayLike<number>; color: string }[]): void {
  const inner = x.bandwidth * 0.8;
  const bw = inner / Math.max(1, series.length);
  const y0 = y.map(Math.max(y.domain[0], 0));
  ctx.save();
  series.forEach((s, k) => {
    ctx.fillStyle = s.color;
    for (let i = 0; i < s.values.length; i++) {
      const v = s.values[i]!;
      if (!Number.isFinite(v)) continue;
      const left = x.map(i) - inner / 2 + k * bw;
      const top = y.map(v);
      ctx.fillRect(left, Math.min(top, y0), Math.max(1, bw - (bw > 4 ? 1 : 0)), Math.abs(y0 - top));
    }
  });
  ctx.restore();
}

export interface LegendItem { label: string; color: string; dash?: number[]; box?: boolean }

export type LegendPlace = 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left' | 'right-outside' | 'auto';

/** Size of a vertical legend box. */
export function legendSize(items: readonly LegendItem[]): { w: number; h: number } {
  const f = font(THEME.legendSize);
  return { w: Math.max(...items.map((i) => measureWidth(i.label, f))) + 44, h: items.length * (THEME.legendSize + 7) + 10 };
}

/**
 * The inner corner of `r` whose legend box covers the fewest of the given pixel points
 * (ties: top-right, top-left, bottom-right, bottom-left).
 */
export function bestLegendCorner(r: Rect, size: { w: number; h: number }, points: readonly [number, number][]): Exclude<LegendPlace, 'auto' | 'right-outside'> {
  const corners = ['top-right', 'top-left', 'bottom-right', 'bottom-left'] as const;
  let best: (typeof corners)[number] = 'top-right', bestN = Infinity;
  for (const c of corners) {
    const x = c.endsWith('right') ? r.x + r.w - size.w - 8 : r.x + 8;
    const y = c.startsWith('top') ? r.y + 8 : r.y + r.h - size.h - 8;
    let n = 0;
    for (const [px, py] of points) if (px >= x - 4 && px <= x + size.w + 4 && py >= y - 4 && py <= y + size.h + 4) n++;
    if (n < bestN) { best = c; bestN = n; }
  }
  return best;
}

/** Legend box inside `r` at a corner (or to the right outside of it). */
export function drawLegend(ctx: Canvas2D, r: Rect, items: readonly LegendItem[], where: Exclude<LegendPlace, 'auto'> = 'top-right'): void {
  if (items.length === 0) return;
  ctx.save();
  ctx.font = font(THEME.legendSize);
  const lh = THEME.legendSize + 7;
  const w = Math.max(...items.map((i) => ctx.measureText(i.label).width)) + 44;
  const h = items.length * lh + 10;
  let x = r.x + r.w - w - 8, y = r.y + 8;
  if (where === 'top-left' || where === 'bottom-left') x = r.x + 8;
  if (where === 'bottom-right' || where === 'bottom-left') y = r.y + r.h - h - 8;
  if (where === 'right-outside') { x = r.x + r.w + 12; y = r.y; }
  ctx.globalAlpha = 0.9;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(x, y, w, h);
  ctx.globalAlpha = 1;
  ctx.strokeStyle = '#cccccc';
  ctx.lineWidth = 1;
  ctx.strokeRect(x + 0.5, y + 0.5, w, h);
  items.forEach((it, i) => {
    const cy = y + 5 + i * lh + lh / 2;
    if (it.box) { ctx.fillStyle = it.color; ctx.fillRect(x + 8, cy - 6, 22, 12); }
    else {
      ctx.strokeStyle = it.color; ctx.lineWidth = 2.5; ctx.setLineDash(it.dash ?? []);
      ctx.beginPath(); ctx.moveTo(x + 8, cy); ctx.lineTo(x + 30, cy); ctx.stroke(); ctx.setLineDash([]);
    }
    text(ctx, it.label, x + 36, cy, { size: THEME.legendSize, baseline: 'middle' });
  });
  ctx.restore();
}

/** Rows of a legend laid out left to right within `width` (item widths from the text measurer). */
export function legendRows(items: readonly LegendItem[], width: number): LegendItem[][] {
  const f = font(THEME.legendSize);
  const rows: LegendItem[][] = [[]];
  let used = 0;
  for (const it of items) {
    const w = measureWidth(it.label, f) + 54;
    if (used + w > width && rows[rows.length - 1]!.length > 0) { rows.push([]); used = 0; }
    rows[rows.length - 1]!.push(it);
    used += w;
  }
  return rows;
}

/** Legend rows centred above the plot area (needs 24 px of top margin per row, see legendRows). */
export function drawLegendRow(ctx: Canvas2D, r: Rect, items: readonly LegendItem[]): void {
  if (items.length === 0) return;
  ctx.save();
  ctx.font = font(THEME.legendSize);
  const rows = legendRows(items, r.w);
  rows.forEach((row, k) => {
    const widths = row.map((i) => ctx.measureText(i.label).width + 36 + 18);
    let x = r.x + Math.max(0, (r.w - widths.reduce((a, b) => a + b, 0)) / 2);
    const cy = r.y - 16 - (rows.length - 1 - k) * 24;
    row.forEach((it, j) => {
      if (it.box) { ctx.fillStyle = it.color; ctx.fillRect(x, cy - 6, 22, 12); }
      else {
        ctx.strokeStyle = it.color; ctx.lineWidth = 2.5; ctx.setLineDash(it.dash ?? []);
        ctx.beginPath(); ctx.moveTo(x, cy); ctx.lineTo(x + 22, cy); ctx.stroke(); ctx.setLineDash([]);
      }
      text(ctx, it.label, x + 28, cy, { size: THEME.legendSize, baseline: 'middle' });
      x += widths[j]!;
    });
  });
  ctx.restore();
}

// ---------------------------------------------------------------------------------------
// Heatmaps and colour bars
// ---------------------------------------------------------------------------------------

export interface HeatmapGrid { rows: number; cols: number; values: ArrayLike<number> }

/**
 * Pixels per cell so that a rows×cols grid fits in w×h at an integer scale (≥ 1), or 0 when
 * even 1 px per cell does not fit (pool first).
 */
export function cellScale(rows: number, cols: number, w: number, h: number): number {
  return Math.max(0, Math.floor(Math.min(w / cols, h / rows)));
}

/**
 * Draws a grid as image data at an integer scale (nearest neighbour, no smoothing), top-left
 * at (x, y). NaN cells are light grey. Returns the drawn rectangle.
 */
export function drawHeatmapImage(ctx: Canvas2D, x: number, y: number, g: HeatmapGrid, scale: number, cmap: ColorMap, vmin: number, vmax: number): Rect {
  const s = Math.max(1, Math.floor(scale));
  const w = g.cols * s, h = g.rows * s;
  const img = ctx.createImageData(w, h);
  const d = img.data;
  const span = vmax - vmin || 1;
  const lut: Rgb[] = [];
  for (let k = 0; k < 256; k++) lut.push(cmap(k / 255));
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      const v = g.values[r * g.cols + c]!;
      const col: Rgb = Number.isFinite(v) ? lut[Math.max(0, Math.min(255, Math.round(((v - vmin) / span) * 255)))]! : [215, 215, 215];
      for (let dy = 0; dy < s; dy++) {
        let o = ((r * s + dy) * w + c * s) * 4;
        for (let dx = 0; dx < s; dx++) { d[o] = col[0]; d[o + 1] = col[1]; d[o + 2] = col[2]; d[o + 3] = 255; o += 4; }
      }
    }
  }
  ctx.putImageData(img, Math.round(x), Math.round(y));
  return { x: Math.round(x), y: Math.round(y), w, h };
}

/** Annotated cell grid (small matrices): filled cells with their value printed inside. */
export function drawCells(
  ctx: Canvas2D, r: Rect, g: HeatmapGrid, cmap: ColorMap, vmin: number, vmax: number,
  format: (v: number) => string, showValues = true,
): void {
  const cw = r.w / g.cols, ch = r.h / g.rows;
  const span = vmax - vmin || 1;
  const size = Math.max(8, Math.min(THEME.tickSize, Math.floor(ch * 0.55), Math.floor(cw / 4)));
  for (let i = 0; i < g.rows; i++) {
    for (let j = 0; j < g.cols; j++) {
      const v = g.values[i * g.cols + j]!;
      const col: Rgb = Number.isFinite(v) ? cmap((v - vmin) / span) : [225, 225, 225];
      ctx.fillStyle = rgbCss(col);
      ctx.fillRect(r.x + j * cw, r.y + i * ch, Math.ceil(cw), Math.ceil(ch));
      if (showValues && cw >= 22 && ch >= 12) {
        text(ctx, Number.isFinite(v) ? format(v) : '–', r.x + (j + 0.5) * cw, r.y + (i + 0.5) * ch, {
          size, align: 'center', baseline: 'middle', color: luminance(col) > 0.5 ? '#000000' : '#ffffff',
        });
      }
    }
  }
  ctx.save();
  ctx.strokeStyle = THEME.axis;
  ctx.lineWidth = 1;
  ctx.strokeRect(r.x + 0.5, r.y + 0.5, r.w, r.h);
  ctx.restore();
}

/** Vertical colour bar with ticks and a label, to the right of a plot. */
export function drawColorBar(ctx: Canvas2D, r: Rect, cmap: ColorMap, vmin: number, vmax: number, label: string): void {
  ctx.save();
  for (let i = 0; i < r.h; i++) {
    const t = 1 - i / Math.max(1, r.h - 1);
    ctx.fillStyle = rgbCss(cmap(t));
    ctx.fillRect(r.x, r.y + i, r.w, 1);
  }
  ctx.strokeStyle = THEME.axis;
  ctx.lineWidth = 1;
  ctx.strokeRect(r.x + 0.5, r.y + 0.5, r.w, r.h);
  const sc = linearScale(vmin, vmax, r.y + r.h, r.y, { nice: false, count: 5 });
  ctx.font = font(THEME.tickSize);
  let maxW = 0;
  for (const t of sc.ticks) {
    const y = sc.map(t.v);
    ctx.beginPath(); ctx.moveTo(r.x + r.w, Math.round(y) + 0.5); ctx.lineTo(r.x + r.w + 4, Math.round(y) + 0.5); ctx.stroke();
    text(ctx, t.label, r.x + r.w + 7, y, { baseline: 'middle' });
    maxW = Math.max(maxW, ctx.measureText(t.label).width);
  }
  text(ctx, label, r.x + r.w + maxW + 26, r.y + r.h / 2, { size: THEME.labelSize, align: 'center', baseline: 'bottom', rotate: -Math.PI / 2 });
  ctx.restore();
}

/** Finite min and max of values (fallback [0, 1]). */
export function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (Number.isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return lo === Infinity ? [0, 1] : [lo, hi];
}
