/**
 * Node rendering of figures: @napi-rs/canvas (Skia) with DejaVu Sans registered from the
 * `dejavu-fonts-ttf` package, so text renders the same on every machine without system
 * fonts. Each figure is written as `<stem>.png` plus the data behind it as `<stem>.csv`,
 * both atomically.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { GlobalFonts, createCanvas } from '@napi-rs/canvas';
import { RlvrError } from '../../errors.js';
import { writeFileAtomic } from '../../io/writer.js';
import { toCsv } from '../output.js';
import { type Canvas2D, setTextMeasurer } from './chart.js';
import type { Figure } from './figures.js';

let fontsReady = false;

/** Registers DejaVu Sans (regular and bold) once per process. */
export function registerFonts(): void {
  if (fontsReady) return;
  const req = createRequire(import.meta.url);
  let dir: string;
  try {
    dir = path.join(path.dirname(req.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  } catch {
    throw new RlvrError('the dejavu-fonts-ttf package is not installed (needed to render figure text)', { code: 'E_FONT' });
  }
  for (const f of ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf']) {
    const p = path.join(dir, f);
    if (!fs.existsSync(p) || !GlobalFonts.registerFromPath(p, 'DejaVu Sans')) {
      throw new RlvrError(`cannot load font ${p}`, { file: p, code: 'E_FONT' });
    }
  }
  fontsReady = true;
}

// Figures size themselves (caption wrapping) before drawing: measure with the real font,
// registered on first use (not at import, so loading the CLI stays cheap).
let scratch: ReturnType<ReturnType<typeof createCanvas>['getContext']> | null = null;
setTextMeasurer((t, f) => {
  if (!scratch) { registerFonts(); scratch = createCanvas(4, 4).getContext('2d'); }
  scratch.font = f;
  return scratch.measureText(t).width;
});

/** Renders a figure to PNG bytes. */
export function renderPng(fig: Figure): Uint8Array {
  registerFonts();
  const canvas = createCanvas(fig.width, fig.height);
  const ctx = canvas.getContext('2d');
  fig.draw(ctx as unknown as Canvas2D);
  return canvas.encodeSync('png');
}

/** Writes `<png>` and the figure's data as CSV next to it (same stem); returns both paths. */
export function writeFigure(fig: Figure, pngPath: string): string[] {
  const png = renderPng(fig);
  writeFileAtomic(pngPath, png);
  const csv = pngPath.replace(/\.png$/i, '') + '.csv';
  writeFileAtomic(csv, toCsv(fig.data));
  return [pngPath, csv];
}
