#!/usr/bin/env node
/**
 * Bundles the report's browser code (src/report/browser/, excluded from tsconfig) into
 * one minified IIFE, `dist/report-bundle.js`, which `rlvr-lens report` inlines into every
 * report.html. Run by `npm run build` before tsc. Deterministic: same sources → same bytes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const entry = path.join(root, 'src', 'report', 'browser', 'main.ts');
const out = path.join(root, 'dist', 'report-bundle.js');
const res = await build({
  entryPoints: [entry],
  bundle: true,
  format: 'iife',
  minify: true,
  target: ['chrome100', 'firefox100', 'safari15'],
  write: false,
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
});
fs.mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.tmp-${process.pid}`;
fs.writeFileSync(tmp, res.outputFiles[0].contents);
fs.renameSync(tmp, out);
process.stdout.write(`report bundle: ${path.relative(root, out)} (${res.outputFiles[0].contents.byteLength} bytes)\n`);
