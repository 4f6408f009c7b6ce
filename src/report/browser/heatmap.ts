/**
 * Zoomable update-mask / consensus heatmap on a canvas. The pooled image is decoded once
 * per (tensor, view) into an offscreen canvas; zooming and panning only redraw it scaled
 * (nearest neighbour, so single entries stay crisp at full resolution).
 * Wheel = zoom at the cursor, drag = pan, double-click = reset; hover shows the block's
 * entry range and values for every run.
 */
import type { HeatmapBlock, HeatmapTensor, RunInfo } from '../html/model.js';
import { clear, el, hideTip, showTip } from './dom.js';
import { fmtNum } from './format.js';

// Viridis anchors (matplotlib), interpolated into a 256-entry LUT.
const VIRIDIS = [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142], [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]];
const LUT = (() => {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = (i / 255) * (VIRIDIS.length - 1);
    const a = Math.floor(t), b = Math.min(VIRIDIS.length - 1, a + 1), f = t - a;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = VIRIDIS[a]![c]! * (1 - f) + VIRIDIS[b]![c]! * f;
  }
  return lut;
})();

function decodeB64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export interface HeatmapView {
  root: HTMLElement;
  update(tensor: string): void;
}

const BOX_W = 720;
const BOX_H = 460;

export function renderHeatmap(b: HeatmapBlock, runs: RunInfo[]): HeatmapView {
  const root = el('div', { class: 'heatmap-block', id: `hm-${b.id}` });
  const viewSel = el('select', { 'aria-label': 'image', 'data-role': 'heatmap-view' });
  viewSel.appendChild(el('option', { value: '__consensus' }, 'consensus C = mean of all runs’ masks'));
  for (const r of runs) viewSel.appendChild(el('option', { value: r.id }, `update mask: ${r.label}`));
  const fixedScale = el('input', { type: 'checkbox', id: `hm-${b.id}-fixed` });
  const heads = el('input', { type: 'checkbox', id: `hm-${b.id}-heads`, checked: '' });
  const zoomIn = el('button', { type: 'button', title: 'zoom in' }, '+');
  const zoomOut = el('button', { type: 'button', title: 'zoom out' }, '−');
  const reset = el('button', { type: 'button', title: 'reset zoom' }, 'reset');
  const controls = el('div', { class: 'hm-controls' }, viewSel,
    el('label', {}, fixedScale, ' colour scale 0–1'), el('label', {}, heads, ' head boundaries'), zoomIn, zoomOut, reset);
  const info = el('p', { class: 'caption hm-info' });
  const canvas = el('canvas', { class: 'heatmap', width: String(BOX_W), height: String(BOX_H), 'data-role': 'heatmap' });
  const bar = el('canvas', { class: 'colorbar', width: '18', height: String(BOX_H) });
  const barLabels = el('div', { class: 'cb-labels' });
  const stage = el('div', { class: 'hm-stage' }, el('div', { class: 'hm-ylabel' }, 'rows = output features'), canvas, bar, barLabels);
  const xlabel = el('div', { class: 'hm-xlabel' }, 'columns = input features');
  const empty = el('p', { class: 'note' });
  root.append(controls, stage, xlabel, info, empty);
  if (b.caption) root.appendChild(el('p', { class: 'caption' }, b.caption));

  let cur: { name: string; t: HeatmapTensor; img: HTMLCanvasElement; values: Float32Array; perRun: Map<string, Uint8Array>; vmax: number } | null = null;
  let view = { x0: 0, y0: 0, s: 1 }; // image pixel at canvas origin; canvas px per image px (x)
  let sy = 1; // vertical scale factor relative to s (aspect clamping)
  let dispW = BOX_W, dispH = BOX_H;
  let tensorName = '';

  function build(): void {
    cur = null;
    hideTip();
    const t = b.tensors[tensorName];
    if (!t) {
      canvas.style.display = 'none'; bar.style.display = 'none'; barLabels.style.display = 'none'; xlabel.style.display = 'none';
      empty.textContent = tensorName ? `No heatmap data for ${tensorName}.` : 'No tensor selected.';
      info.textContent = '';
      return;
    }
    canvas.style.display = ''; bar.style.display = ''; barLabels.style.display = ''; xlabel.style.display = '';
    empty.textContent = '';
    const [h, w] = t.size;
    const perRun = new Map<string, Uint8Array>();
    for (const r of runs) if (t.runs[r.id]) perRun.set(r.id, decodeB64(t.runs[r.id]!));
    const values = new Float32Array(h * w);
    const which = viewSel.value;
    if (which === '__consensus') {
      const arrs = [...perRun.values()];
      for (const a of arrs) for (let i = 0; i < values.length; i++) values[i]! += a[i]! / 255;
      if (arrs.length) for (let i = 0; i < values.length; i++) values[i]! /= arrs.length;
    } else {
      const a = perRun.get(which);
      if (a) for (let i = 0; i < values.length; i++) values[i] = a[i]! / 255;
    }
    let vmax = 0;
    for (let i = 0; i < values.length; i++) if (values[i]! > vmax) vmax = values[i]!;
    if (fixedScale.checked || vmax === 0) vmax = 1;
    const img = document.createElement('canvas');
    img.width = w; img.height = h;
    const ctx = img.getContext('2d')!;
    const id = ctx.createImageData(w, h);
    for (let i = 0; i < values.length; i++) {
      const q = Math.min(255, Math.round((values[i]! / vmax) * 255)) * 3;
      id.data[i * 4] = LUT[q]!; id.data[i * 4 + 1] = LUT[q + 1]!; id.data[i * 4 + 2] = LUT[q + 2]!; id.data[i * 4 + 3] = 255;
    }
    ctx.putImageData(id, 0, 0);
    cur = { name: tensorName, t, img, values, perRun, vmax };
    // Display size: keep the tensor's aspect, clamped to 1:3..3:1 so thin MLP matrices stay visible.
    const aspect = Math.min(3, Math.max(1 / 3, t.shape[1] / t.shape[0]));
    dispW = Math.round(Math.min(BOX_W, BOX_H * aspect));
    dispH = Math.round(dispW / aspect);
    canvas.width = dispW; canvas.height = dispH;
    bar.height = dispH;
    sy = (dispH / h) / (dispW / w);
    const trueAspect = t.shape[1] / t.shape[0];
    const poolTxt = t.pool[0] === 1 && t.pool[1] === 1 ? 'full resolution (one pixel per entry)'
      : `pooled: each pixel is the fraction of changed entries in a ${t.pool[0]}×${t.pool[1]} block`;
    info.textContent = `${tensorName}  [${t.shape[0]}×${t.shape[1]}] → image ${h}×${w}; ${poolTxt}` +
      (Math.abs(aspect - trueAspect) > 1e-9 ? '; aspect compressed for display' : '') + '. Wheel: zoom, drag: pan, double-click: reset.';
    canvas.dataset.tensor = tensorName;
    canvas.dataset.view = which;
    drawBar();
    resetView();
  }

  function drawBar(): void {
    const ctx = bar.getContext('2d')!;
    for (let yy = 0; yy < bar.height; yy++) {
      const q = Math.round((1 - yy / (bar.height - 1)) * 255) * 3;
      ctx.fillStyle = `rgb(${LUT[q]},${LUT[q + 1]},${LUT[q + 2]})`;
      ctx.fillRect(0, yy, bar.width, 1);
    }
    clear(barLabels);
    const vmax = cur?.vmax ?? 1;
    for (const f of [1, 0.75, 0.5, 0.25, 0]) {
      const d = el('div', {}, fmtNum(f * vmax, 3));
      d.style.top = `${(1 - f) * (bar.height - 12)}px`;
      barLabels.appendChild(d);
    }
    barLabels.style.height = `${bar.height}px`;
  }

  function resetView(): void {
    if (!cur) return;
    view = { x0: 0, y0: 0, s: dispW / cur.t.size[1] };
    draw();
  }

  function draw(): void {
    const ctx = canvas.getContext('2d')!;
    ctx.fillStyle = '#f4f4f4';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!cur) return;
    ctx.imageSmoothingEnabled = false;
    const { s, x0, y0 } = view;
    ctx.setTransform(s, 0, 0, s * sy, -x0 * s, -y0 * s * sy);
    ctx.drawImage(cur.img, 0, 0);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    const t = cur.t;
    if (heads.checked && t.headDim && t.headAxis) {
      ctx.strokeStyle = 'rgba(255,40,40,0.95)';
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 1.5;
      const along = t.headAxis === 'rows' ? t.shape[0] : t.shape[1];
      for (let k = t.headDim; k < along; k += t.headDim) {
        ctx.beginPath();
        if (t.headAxis === 'rows') { const yy = ((k / t.pool[0]) - y0) * s * sy; ctx.moveTo(0, yy); ctx.lineTo(canvas.width, yy); }
        else { const xx = ((k / t.pool[1]) - x0) * s; ctx.moveTo(xx, 0); ctx.lineTo(xx, canvas.height); }
        ctx.stroke();
      }
      ctx.setLineDash([]);
    }
  }

  function zoomAt(cx: number, cy: number, factor: number): void {
    if (!cur) return;
    const minS = dispW / cur.t.size[1];
    const ns = Math.min(minS * 512, Math.max(minS, view.s * factor));
    const ix = view.x0 + cx / view.s, iy = view.y0 + cy / (view.s * sy);
    view = { s: ns, x0: ix - cx / ns, y0: iy - cy / (ns * sy) };
    clampView();
    draw();
  }
  function clampView(): void {
    if (!cur) return;
    const [h, w] = cur.t.size;
    const vw = dispW / view.s, vh = dispH / (view.s * sy);
    view.x0 = Math.min(Math.max(0, view.x0), Math.max(0, w - vw));
    view.y0 = Math.min(Math.max(0, view.y0), Math.max(0, h - vh));
  }

  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoomAt((e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height), e.deltaY < 0 ? 1.25 : 0.8);
  }, { passive: false });
  let drag: { x: number; y: number; x0: number; y0: number } | null = null;
  canvas.addEventListener('mousedown', (e) => { drag = { x: e.clientX, y: e.clientY, x0: view.x0, y0: view.y0 }; });
  window.addEventListener('mouseup', () => { drag = null; });
  canvas.addEventListener('dblclick', () => resetView());
  zoomIn.addEventListener('click', () => zoomAt(canvas.width / 2, canvas.height / 2, 1.5));
  zoomOut.addEventListener('click', () => zoomAt(canvas.width / 2, canvas.height / 2, 1 / 1.5));
  reset.addEventListener('click', () => resetView());
  canvas.addEventListener('mousemove', (e) => {
    if (!cur) return;
    const r = canvas.getBoundingClientRect();
    const cx = (e.clientX - r.left) * (canvas.width / r.width), cy = (e.clientY - r.top) * (canvas.height / r.height);
    if (drag) {
      const k = canvas.width / r.width;
      view.x0 = drag.x0 - ((e.clientX - drag.x) * k) / view.s;
      view.y0 = drag.y0 - ((e.clientY - drag.y) * k) / (view.s * sy);
      clampView();
      draw();
      hideTip();
      return;
    }
    const ix = Math.floor(view.x0 + cx / view.s), iy = Math.floor(view.y0 + cy / (view.s * sy));
    const [h, w] = cur.t.size;
    if (ix < 0 || iy < 0 || ix >= w || iy >= h) { hideTip(); return; }
    const [pr, pc] = cur.t.pool;
    const r0 = iy * pr, r1 = Math.min(cur.t.shape[0], r0 + pr) - 1;
    const c0 = ix * pc, c1 = Math.min(cur.t.shape[1], c0 + pc) - 1;
    const lines = [pr === 1 && pc === 1 ? `row ${r0}, col ${c0}` : `rows ${r0}–${r1}, cols ${c0}–${c1}`,
      `${viewSel.value === '__consensus' ? 'consensus' : 'changed fraction'}: ${fmtNum(cur.values[iy * w + ix]!, 3)}`];
    if (cur.t.headDim && cur.t.headAxis) lines.push(`head ${Math.floor((cur.t.headAxis === 'rows' ? r0 : c0) / cur.t.headDim)}`);
    for (const run of runs) {
      const a = cur.perRun.get(run.id);
      if (a) lines.push(`  ${run.label}: ${fmtNum(a[iy * w + ix]! / 255, 3)}`);
    }
    showTip(e.clientX, e.clientY, lines);
  });
  canvas.addEventListener('mouseleave', hideTip);
  viewSel.addEventListener('change', build);
  fixedScale.addEventListener('change', build);
  heads.addEventListener('change', draw);

  return {
    root,
    update(tensor: string): void {
      if (tensor === tensorName && cur) return;
      tensorName = tensor;
      build();
    },
  };
}
