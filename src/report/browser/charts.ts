/**
 * Line, bar and matrix figures drawn as SVG (no plotting library: the report must be one
 * offline file). Hovering shows the nearest values.
 */
import type { BarFigure, Figure, LineFigure, MatrixFigure } from '../html/model.js';
import { el, hideTip, showTip, svg } from './dom.js';
import { fmtNum, fmtTick, ticks } from './format.js';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

const W = 640;
const H = 300;
const M = { l: 64, r: 16, t: 28, b: 44 };

function frame(title: string, xLabel: string, yLabel: string): SVGSVGElement {
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
  s.appendChild(svg('text', { x: W / 2, y: 16, 'text-anchor': 'middle', class: 'ctitle' }, title));
  s.appendChild(svg('text', { x: M.l + (W - M.l - M.r) / 2, y: H - 6, 'text-anchor': 'middle', class: 'alabel' }, xLabel));
  s.appendChild(svg('text', { x: 14, y: M.t + (H - M.t - M.b) / 2, 'text-anchor': 'middle', class: 'alabel', transform: `rotate(-90 14 ${M.t + (H - M.t - M.b) / 2})` }, yLabel));
  return s;
}

function legend(names: string[], extra: { name: string; color?: string; solid?: boolean }[] = [], dashed: boolean[] = [], slots: number[] = []): HTMLElement {
  const box = el('div', { class: 'legend' });
  names.forEach((n, i) => {
    const c = PALETTE[(slots[i] ?? i) % PALETTE.length];
    box.appendChild(el('span', { class: 'key' }, el('i', dashed[i] ? { class: 'dash', style: `border-color:${c}` } : { style: `background:${c}` }), n));
  });
  for (const e of extra) box.appendChild(el('span', { class: 'key' }, el('i', e.solid ? { style: `background:${e.color ?? '#333'}` } : { class: 'dash', style: `border-color:${e.color ?? '#333'}` }), e.name));
  return box;
}

function yAxis(s: SVGSVGElement, lo: number, hi: number, y: (v: number) => number, log: boolean): void {
  const tv = log ? logTicks(lo, hi) : ticks(lo, hi);
  for (const v of tv) {
    const yy = y(v);
    if (yy < M.t - 0.5 || yy > H - M.b + 0.5) continue;
    s.appendChild(svg('line', { x1: M.l, x2: W - M.r, y1: yy, y2: yy, class: 'grid' }));
    s.appendChild(svg('text', { x: M.l - 6, y: yy + 4, 'text-anchor': 'end', class: 'tick' }, fmtTick(v)));
  }
  s.appendChild(svg('line', { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, class: 'axis' }));
  s.appendChild(svg('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, class: 'axis' }));
}

function logTicks(lo: number, hi: number): number[] {
  const decades = Math.log10(hi) - Math.log10(lo);
  // Less than a decade: ordinary nice ticks, placed on the log axis.
  if (decades < 1) return ticks(lo, hi, 5).filter((v) => v > 0);
  const out: number[] = [];
  const mult = decades < 1.5 ? [1, 2, 5] : [1];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const m of mult) out.push(m * Math.pow(10, e));
  return out;
}

export function renderLine(f: LineFigure): HTMLElement {
  const s = frame(f.title, f.xLabel, f.yLabel);
  let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
  for (const se of f.series) {
    se.x.forEach((x, i) => {
      const yv = se.y[i];
      if (yv === null || yv === undefined || !Number.isFinite(yv) || (f.logY && yv <= 0)) return;
      xlo = Math.min(xlo, x); xhi = Math.max(xhi, x); ylo = Math.min(ylo, yv); yhi = Math.max(yhi, yv);
    });
  }
  for (const h of f.hlines ?? []) { ylo = Math.min(ylo, h.value); yhi = Math.max(yhi, h.value); }
  if (!Number.isFinite(xlo)) { xlo = 0; xhi = 1; ylo = 0; yhi = 1; }
  if (!f.logY && ylo > 0 && ylo < yhi * 0.5) ylo = 0;
  if (xhi === xlo) { xlo -= 0.5; xhi += 0.5; }
  if (yhi === ylo) { const d = Math.abs(yhi) * 0.1 || 1; ylo -= d; yhi += d; }
  const pad = f.logY ? 1 : 0;
  const lylo = f.logY ? Math.log10(ylo) : ylo, lyhi = f.logY ? Math.log10(yhi) : yhi + (yhi - ylo) * 0.05 * (1 - pad);
  const x = (v: number): number => M.l + ((v - xlo) / (xhi - xlo)) * (W - M.l - M.r);
  const y = (v: number): number => H - M.b - (((f.logY ? Math.log10(v) : v) - lylo) / (lyhi - lylo)) * (H - M.t - M.b);
  yAxis(s, ylo, yhi, y, !!f.logY);
  const intX = f.series.every((se) => se.x.every((v) => Number.isInteger(v)));
  const xt = ticks(xlo, xhi, 8).filter((v) => !intX || Number.isInteger(v));
  for (const v of xt) {
    s.appendChild(svg('text', { x: x(v), y: H - M.b + 16, 'text-anchor': 'middle', class: 'tick' }, fmtTick(v)));
  }
  for (const v of f.vlines ?? []) {
    if (v < xlo || v > xhi) continue;
    s.appendChild(svg('line', { x1: x(v), x2: x(v), y1: M.t, y2: H - M.b, class: 'vline' }));
  }
  for (const h of f.hlines ?? []) {
    s.appendChild(svg('line', { x1: M.l, x2: W - M.r, y1: y(h.value), y2: y(h.value), class: 'hline' }));
    s.appendChild(svg('text', { x: W - M.r - 4, y: y(h.value) - 4, 'text-anchor': 'end', class: 'hlabel' }, h.label));
  }
  f.series.forEach((se, si) => {
    let d = '';
    let pen = false;
    se.x.forEach((xv, i) => {
      const yv = se.y[i];
      if (yv === null || yv === undefined || !Number.isFinite(yv) || (f.logY && yv <= 0)) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(xv).toFixed(1)},${y(yv).toFixed(1)}`;
      pen = true;
    });
    const colour = PALETTE[(se.color ?? si) % PALETTE.length]!;
    s.appendChild(svg('path', { d, fill: 'none', stroke: colour, 'stroke-width': 1.6, 'stroke-dasharray': se.dashed ? '5 3' : 'none', class: 'series' }));
    if (se.x.length <= 40) {
      se.x.forEach((xv, i) => {
        const yv = se.y[i];
        if (yv === null || yv === undefined || !Number.isFinite(yv) || (f.logY && yv <= 0)) return;
        s.appendChild(svg('circle', { cx: x(xv).toFixed(1), cy: y(yv).toFixed(1), r: 2.5, fill: colour }));
      });
    }
  });
  // Hover: nearest x across series.
  const cursor = svg('line', { y1: M.t, y2: H - M.b, class: 'cursor', visibility: 'hidden' });
  s.appendChild(cursor);
  s.addEventListener('mousemove', (ev) => {
    const r = s.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    if (px < M.l || px > W - M.r) { hideTip(); cursor.setAttribute('visibility', 'hidden'); return; }
    const xv = xlo + ((px - M.l) / (W - M.l - M.r)) * (xhi - xlo);
    const lines: string[] = [];
    let bestX = xv;
    f.series.forEach((se, si) => {
      let bi = -1, bd = Infinity;
      se.x.forEach((sx, i) => { const dd = Math.abs(sx - xv); if (dd < bd) { bd = dd; bi = i; } });
      if (bi < 0) return;
      if (si === 0) bestX = se.x[bi]!;
      const yv = se.y[bi];
      lines.push(`${se.name}: ${yv === null || yv === undefined ? '—' : fmtNum(yv)} (${f.xLabel} ${fmtNum(se.x[bi]!)})`);
    });
    cursor.setAttribute('x1', String(x(bestX)));
    cursor.setAttribute('x2', String(x(bestX)));
    cursor.setAttribute('visibility', 'visible');
    showTip(ev.clientX, ev.clientY, lines.slice(0, 12));
  });
  s.addEventListener('mouseleave', () => { hideTip(); cursor.setAttribute('visibility', 'hidden'); });
  const wrap = el('div', { class: 'figure' }, s, legend(f.series.map((se) => se.name), (f.hlines ?? []).map((h) => ({ name: h.label })), f.series.map((se) => !!se.dashed), f.series.map((se, i) => se.color ?? i)));
  if (f.caption) wrap.appendChild(el('p', { class: 'caption' }, f.caption));
  return wrap;
}

export function renderBar(f: BarFigure): HTMLElement {
  const s = frame(f.title, f.xLabel, f.yLabel);
  let yhi = 0, ylo = 0;
  for (const se of f.series) for (const v of se.values) if (v !== null && Number.isFinite(v)) { yhi = Math.max(yhi, v); ylo = Math.min(ylo, v); }
  for (const v of f.markers?.values ?? []) if (v !== null && Number.isFinite(v)) yhi = Math.max(yhi, v);
  for (const h of f.hlines ?? []) yhi = Math.max(yhi, h.value);
  if (yhi === ylo) yhi = ylo + 1;
  yhi *= 1.05;
  const y = (v: number): number => H - M.b - ((v - ylo) / (yhi - ylo)) * (H - M.t - M.b);
  yAxis(s, ylo, yhi, y, false);
  const n = f.categories.length;
  const gw = (W - M.l - M.r) / Math.max(1, n);
  const ns = Math.max(1, f.series.length);
  const bw = Math.max(1, (gw * 0.8) / ns);
  const every = Math.ceil(n / 28);
  f.categories.forEach((c, ci) => {
    const gx = M.l + ci * gw + gw * 0.1;
    f.series.forEach((se, si) => {
      const v = se.values[ci];
      if (v === null || v === undefined || !Number.isFinite(v)) return;
      const rect = svg('rect', { x: (gx + si * bw).toFixed(1), y: Math.min(y(v), y(0)).toFixed(1), width: Math.max(0.5, bw - 0.5).toFixed(1), height: Math.abs(y(v) - y(0)).toFixed(1), fill: PALETTE[si % PALETTE.length]!, class: 'bar' });
      const mk = f.markers?.values[ci];
      rect.addEventListener('mousemove', (ev) => showTip(ev.clientX, ev.clientY, [`${f.xLabel} ${c}`, `${se.name}: ${fmtNum(v)}`, ...(mk !== null && mk !== undefined && f.markers ? [`${f.markers.name}: ${fmtNum(mk)}`] : [])]));
      rect.addEventListener('mouseleave', hideTip);
      s.appendChild(rect);
    });
    const mk = f.markers?.values[ci];
    if (mk !== null && mk !== undefined && Number.isFinite(mk)) {
      s.appendChild(svg('line', { x1: gx - 1, x2: gx + ns * bw + 1, y1: y(mk), y2: y(mk), class: 'marker' }));
    }
    if (ci % every === 0) s.appendChild(svg('text', { x: gx + (ns * bw) / 2, y: H - M.b + 16, 'text-anchor': 'middle', class: 'tick' }, c));
  });
  for (const h of f.hlines ?? []) {
    s.appendChild(svg('line', { x1: M.l, x2: W - M.r, y1: y(h.value), y2: y(h.value), class: 'hline' }));
    s.appendChild(svg('text', { x: W - M.r - 4, y: y(h.value) - 4, 'text-anchor': 'end', class: 'hlabel' }, h.label));
  }
  const extra = [...(f.hlines ?? []).map((h) => ({ name: h.label })), ...(f.markers ? [{ name: `${f.markers.name} (black tick)`, color: '#000', solid: true }] : [])];
  const wrap = el('div', { class: 'figure' }, s, legend(f.series.map((se) => se.name), extra));
  if (f.caption) wrap.appendChild(el('p', { class: 'caption' }, f.caption));
  return wrap;
}

export function renderMatrix(f: MatrixFigure): HTMLElement {
  const n = f.labels.length;
  const cell = Math.max(18, Math.min(56, Math.floor(420 / Math.max(1, n))));
  const lw = 120;
  const w = lw + n * cell + 10, h = 30 + n * cell + lw;
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, class: 'chart matrix', role: 'img', 'aria-label': f.title, style: `max-width:${w}px` });
  let vmax = 0;
  for (const r of f.values) for (const v of r) if (v !== null && Number.isFinite(v)) vmax = Math.max(vmax, v);
  if (vmax === 0) vmax = 1;
  f.values.forEach((row, i) => {
    s.appendChild(svg('text', { x: lw - 4, y: 30 + i * cell + cell / 2 + 4, 'text-anchor': 'end', class: 'tick' }, f.labels[i]!));
    row.forEach((v, j) => {
      const t = v === null ? 0 : v / vmax;
      const rect = svg('rect', { x: lw + j * cell, y: 30 + i * cell, width: cell - 1, height: cell - 1, fill: v === null ? '#eee' : `rgba(31,119,180,${(0.08 + 0.92 * t).toFixed(3)})` });
      rect.addEventListener('mousemove', (ev) => showTip(ev.clientX, ev.clientY, [`${f.labels[i]} × ${f.labels[j]}`, v === null ? '—' : fmtNum(v)]));
      rect.addEventListener('mouseleave', hideTip);
      s.appendChild(rect);
      if (cell >= 34 && v !== null) s.appendChild(svg('text', { x: lw + j * cell + cell / 2, y: 30 + i * cell + cell / 2 + 4, 'text-anchor': 'middle', class: t > 0.6 ? 'mtext light' : 'mtext' }, fmtNum(v, 2)));
    });
  });
  f.labels.forEach((l, j) => {
    const xx = lw + j * cell + cell / 2, yy = 30 + n * cell + 6;
    s.appendChild(svg('text', { x: xx, y: yy, 'text-anchor': 'end', class: 'tick', transform: `rotate(-60 ${xx} ${yy})` }, l));
  });
  const wrap = el('div', { class: 'figure' }, el('div', { class: 'mtitle' }, f.title), s);
  if (f.caption) wrap.appendChild(el('p', { class: 'caption' }, f.caption));
  return wrap;
}

export function renderFigure(f: Figure): HTMLElement {
  switch (f.type) {
    case 'line': return renderLine(f);
    case 'bar': return renderBar(f);
    case 'matrix': return renderMatrix(f);
  }
}
