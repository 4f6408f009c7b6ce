/**
 * The report's browser script. `npm run build` bundles src/report/browser/ into
 * `dist/report-bundle.js` (scripts/build-report-bundle.mjs); this module finds it. In a
 * source checkout (tests under tsx, or after editing the browser code) a missing or stale
 * bundle is rebuilt in memory with esbuild, so the report never inlines outdated code.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RlvrError } from '../../errors.js';

function packageRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(d, 'package.json'))) return d;
    const up = path.dirname(d);
    if (up === d) throw new RlvrError('cannot find the rlvr-lens package folder (package.json)');
    d = up;
  }
}

function newestMtime(dir: string): number {
  let m = 0;
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.ts')) m = Math.max(m, fs.statSync(path.join(dir, f)).mtimeMs);
  return m;
}

let cached: string | null = null;

/** The minified IIFE that renders the report (≈25 kB). */
export async function loadReportBundle(): Promise<string> {
  if (cached !== null) return cached;
  const root = packageRoot();
  const built = path.join(root, 'dist', 'report-bundle.js');
  const srcDir = path.join(root, 'src', 'report', 'browser');
  const haveSrc = fs.existsSync(path.join(srcDir, 'main.ts'));
  const srcTime = haveSrc ? Math.max(newestMtime(srcDir), fs.statSync(path.join(root, 'src', 'report', 'html', 'model.ts')).mtimeMs) : 0;
  if (fs.existsSync(built) && (!haveSrc || fs.statSync(built).mtimeMs >= srcTime)) {
    cached = fs.readFileSync(built, 'utf8');
    return cached;
  }
  if (!haveSrc) throw new RlvrError(`report script not built: ${built} is missing (run npm run build)`);
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch {
    throw new RlvrError(`report script not built: ${built} is missing or older than ${srcDir} and esbuild is not installed (run npm run build)`);
  }
  const res = await esbuild.build({
    entryPoints: [path.join(srcDir, 'main.ts')], bundle: true, format: 'iife', minify: true,
    target: ['chrome100', 'firefox100', 'safari15'], write: false, legalComments: 'none', charset: 'utf8', logLevel: 'silent',
  });
  cached = res.outputFiles[0]!.text;
  return cached;
}
