/**
 * `npm run bench`: runs every `bench/*.bench.js` module (or those named on the command
 * line, e.g. `npm run bench -- sparsity`). Each module's default export is an async function
 * that prints its own results as ratios against a baseline measured in the same run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ext = import.meta.url.endsWith('.ts') ? '.bench.ts' : '.bench.js';
const only = process.argv.slice(2);
const files = fs.readdirSync(here).filter((f) => f.endsWith(ext)).sort()
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)));
for (const f of files) {
  process.stdout.write(`\n=== ${f.replace(ext, '')} ===\n`);
  const mod = (await import(pathToFileURL(path.join(here, f)).href)) as { default: () => Promise<void> };
  await mod.default();
}
