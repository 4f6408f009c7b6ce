/** Worker entry for `lab reproduce --jobs N`: executes one run spec. */
import { parentPort, workerData } from 'node:worker_threads';
import { executeRun, type RunSpec } from './runs.js';

const { out, spec } = workerData as { out: string; spec: RunSpec };
try {
  executeRun(out, spec);
  parentPort!.postMessage({ ok: true });
} catch (e) {
  parentPort!.postMessage({ ok: false, error: e instanceof Error ? `${e.message}` : String(e) });
}
