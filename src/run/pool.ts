/**
 * A small worker_threads pool for tensor-parallel work with a deterministic result order.
 *
 * `runOrdered(tasks, opts)` sends tasks to `threads` workers (each a copy of `worker`, which
 * calls `serveTasks(handler)`), hands results to `onResult(index, result)` strictly in task
 * order whatever order they finish in, and keeps at most `window` tasks in flight past the
 * next one to deliver, so buffered results (e.g. masks) stay bounded. Reductions done in
 * `onResult` therefore happen in a fixed order: outputs do not depend on `threads`.
 * With threads ≤ 1 the caller should run tasks in-process instead (no worker start-up).
 *
 * A worker error reaches the caller as the same RlvrError (file, code, exit code), so bad
 * input inside a worker is still one clean line.
 */
import * as os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker, parentPort, workerData, type TransferListItem } from 'node:worker_threads';
import { RlvrError } from '../errors.js';

/** The default thread count: all cores. */
export function defaultThreads(): number {
  return Math.max(1, typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length);
}

/**
 * Resolves a worker module next to `importMetaUrl`: `<stem>.js` in the built dist, the `.ts`
 * sibling when running from sources under tsx.
 */
export function workerUrl(stem: string, importMetaUrl: string): URL {
  return new URL(`./${stem}${importMetaUrl.endsWith('.ts') ? '.ts' : '.js'}`, importMetaUrl);
}

interface TaskMsg<T> { id: number; task: T }
interface ResultMsg<R> { id: number; result?: R; error?: { message: string; file?: string; code?: string; exitCode?: number; stack?: string } }

export interface PoolOptions<R> {
  worker: URL;
  workerData: unknown;
  threads: number;
  /** Max tasks dispatched beyond the next undelivered one (default 4 × threads). */
  window?: number;
  onResult(index: number, result: R): void;
}

export async function runOrdered<T, R>(tasks: readonly T[], o: PoolOptions<R>): Promise<void> {
  if (tasks.length === 0) return;
  const n = Math.max(1, Math.min(o.threads, tasks.length));
  const window = Math.max(n, o.window ?? 4 * n);
  const workers: Worker[] = [];
  const pending = new Map<number, R>();
  let next = 0, deliver = 0, failed: unknown = null;
  return new Promise<void>((resolve, reject) => {
    const finish = (err: unknown): void => {
      if (failed !== null) return;
      failed = err ?? false;
      for (const w of workers) void w.terminate();
      if (err) reject(err); else resolve();
    };
    const feed = (w: Worker): void => {
      if (failed !== null) return;
      if (next < tasks.length && next < deliver + window) {
        const id = next++;
        (w as Worker & { busy?: boolean }).busy = true;
        w.postMessage({ id, task: tasks[id] } satisfies TaskMsg<T>);
      } else {
        (w as Worker & { busy?: boolean }).busy = false;
      }
    };
    for (let k = 0; k < n; k++) {
      const w = spawn(o.worker, o.workerData);
      workers.push(w);
      w.on('message', (m: ResultMsg<R>) => {
        if (m.error) {
          const e = m.error;
          const err = e.code !== undefined ? new RlvrError(e.message, { file: e.file, code: e.code, exitCode: e.exitCode }) : new Error(e.message);
          if (e.stack && !(err instanceof RlvrError)) err.stack = e.stack;
          finish(err);
          return;
        }
        pending.set(m.id, m.result as R);
        try {
          while (pending.has(deliver)) {
            const r = pending.get(deliver)!;
            pending.delete(deliver);
            o.onResult(deliver, r);
            deliver++;
          }
        } catch (err) { finish(err); return; }
        if (deliver === tasks.length) { finish(null); return; }
        feed(w);
        // delivering may have opened the window for idle workers
        for (const other of workers) if (other !== w && !(other as Worker & { busy?: boolean }).busy) feed(other);
      });
      w.on('error', (err) => finish(err));
      w.on('exit', (code) => { if (code !== 0 && failed === null) finish(new Error(`worker exited with code ${code}`)); });
      feed(w);
    }
  });
}

/**
 * Starts a worker. Under tsx (a `.ts` worker) the loader hooks of the main thread do not
 * reach workers in Node 20, so a one-line bootstrap imports tsx's loader (found in the
 * main thread's `--import` flags) before the worker module.
 */
function spawn(url: URL, data: unknown): Worker {
  if (url.pathname.endsWith('.ts')) {
    const argv = process.execArgv;
    const loader = argv.find((a, i) => argv[i - 1] === '--import' && /tsx/.test(a));
    const api = loader ? new URL('./esm/api/index.mjs', loader).href : 'tsx/esm/api';
    const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`;
    return new Worker(code, { eval: true, workerData: data });
  }
  return new Worker(fileURLToPath(url), { workerData: data });
}

/**
 * Worker side: call once at the top of a worker module. `handler` gets the pool's
 * `workerData` and each task; it returns the result and the buffers to transfer.
 */
export function serveTasks<T, R>(handler: (task: T, data: unknown) => { result: R; transfer?: TransferListItem[] }): void {
  if (!parentPort) throw new Error('serveTasks must run in a worker thread');
  const port = parentPort;
  port.on('message', (m: TaskMsg<T>) => {
    try {
      const { result, transfer } = handler(m.task, workerData);
      port.postMessage({ id: m.id, result } satisfies ResultMsg<R>, transfer ?? []);
    } catch (e) {
      const err = e as Partial<RlvrError> & Error;
      port.postMessage({
        id: m.id,
        error: e instanceof RlvrError
          ? { message: e.message, file: e.file, code: e.code, exitCode: e.exitCode }
          : { message: err?.message ?? String(e), stack: err?.stack },
      } satisfies ResultMsg<R>);
    }
  });
}
