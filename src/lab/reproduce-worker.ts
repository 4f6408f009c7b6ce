/** Worker entry for `lab reproduce --jobs N`: executes one run spec. */
import { parentPort, workerData } from 'node:worker_threads';
import { executeRun, type RunSpec } from './runs.js';

const { out, spec } = workerData as { out: string; spec: RunSpec };
executeRun(out, spec).then(
  () => parentPort!.postMessage({ ok: true }),
  (e: unknown) => parentPort!.postMessage({ ok: false, error: e instanceof Error ? `${e.message}` : String(e) }),
);
