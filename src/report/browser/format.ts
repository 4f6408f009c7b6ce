/** Number formatting shared by tables, tooltips and axes. */
import type { Cell, ColumnType } from '../html/model.js';

export function fmtNum(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'NaN' : x > 0 ? '∞' : '−∞';
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(Math.max(0, digits - 1));
  return String(Number(x.toPrecision(digits)));
}

export function fmtCell(c: Cell, type: ColumnType, digits?: number): string {
  if (c === null || c === undefined) return '—';
  if (typeof c !== 'number') return String(c);
  switch (type) {
    case 'pct': return `${(c * 100).toFixed(digits ?? 2)}%`;
    case 'deg': return `${c.toFixed(digits ?? 2)}°`;
    case 'int': return Number.isInteger(c) ? c.toLocaleString('en-US') : fmtNum(c, digits);
    case 'num': return fmtNum(c, digits ?? 4);
    default: return String(c);
  }
}

/** "Nice" axis ticks covering [lo, hi]. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) { const d = Math.abs(lo) || 1; lo -= d * 0.5; hi += d * 0.5; }
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}

export function fmtTick(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}
