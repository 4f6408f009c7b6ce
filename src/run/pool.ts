/**
 * A small worker_threads pool for tensor-parallel work with a deterministic result order.
 *
 * `runOrdered(tasks, opts)` sends tasks to `threads` workers (each a copy of `worker`, which
 * calls `serveTasks(handler)`), hands results to `onResult(index, result)` strictly in task
 * order whatever order they finish in, and keeps at most `window` tasks in flight past the
 * next one to deliver, so buffered results (e.g. masks) stay bounded. Reductions done in
 * `onResult` therefore happen in a fixed order: outputs do not depend on `threads`.
 * With threads ≤ 1 the caller should run tasks in-process instead (no worker start-up);
 * `local` lets the calling thread take tasks too.
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

export interface PoolOptions<T, R> {
  worker: URL;
  workerData: unknown;
  /** Total threads, the calling thread included when `local` is given. */
  threads: number;
  /** Max tasks dispatched beyond the next undelivered one (default 4 × threads). */
  window?: number;
  /**
   * Tasks a worker holds at once, running and queued (default 2). More keeps a worker busy
   * while the main thread runs a long local task before it can hand out the next ones.
   */
  depth?: number;
  /**
   * Runs a task on the calling thread. When given, the calling thread works as one of the
   * `threads` (one task per event-loop turn, so worker messages keep flowing) and one worker
   * fewer is started: with 2 cores, one worker + the main thread instead of two workers.
   */
  local?: (task: T) => R;
  /**
   * The order in which tasks are handed out (a permutation of their indices; default: task
   * order). Results are still delivered in task order. Handing the largest of the last tasks
   * out first keeps one thread from finishing a large task alone at the end.
   */
  order?: readonly number[];
  /**
   * The work in each task (e.g. bytes). When given, a worker's queue beyond its first task is
   * capped at its fair share of the work not yet done (what is queued anywhere plus what is
   * not handed out, over `threads`) as well as at `depth` tasks: near the end no worker holds
   * large tasks while the others run out of work.
   */
  size?: (task: T) => number;
  /**
   * Workers started earlier with `startWorker(worker, workerData)` (so their start-up overlapped
   * the caller's own preparation); used first, and terminated if more than needed.
   */
  started?: Worker[];
  onResult(index: number, result: R): void;
}

export async function runOrdered<T, R>(tasks: readonly T[], o: PoolOptions<T, R>): Promise<void> {
  const started = [...(o.started ?? [])];
  if (tasks.length === 0) { for (const w of started) void w.terminate(); return; }
  const total = Math.max(1, Math.min(o.threads, tasks.length));
  const nWorkers = o.local ? total - 1 : total;
  const window = Math.max(total, o.window ?? 4 * total);
  const depth = Math.max(1, Math.floor(o.depth ?? 2));
  // Each worker holds up to `depth` tasks (one running, the rest queued), so it does not wait
  // for the main thread to hand it the next one (the main thread may be busy with a local task).
  const workers: (Worker & { inflight?: number; queued?: number })[] = [];
  const sizeOf = o.size ? tasks.map((t) => Math.max(0, o.size!(t))) : null;
  let undispatched = sizeOf ? sizeOf.reduce((a, b) => a + b, 0) : 0;
  const pending = new Map<number, R>();
  const order = o.order ?? null;
  if (order && (order.length !== tasks.length || new Set(order).size !== tasks.length || order.some((i) => !(i >= 0 && i < tasks.length)))) {
    throw new RangeError('runOrdered: order must be a permutation of the task indices');
  }
  // `next` counts tasks handed out; the task handed out next is order[next]
  let next = 0, deliver = 0, failed: unknown = null;
  const taskAt = (k: number): number => (order ? order[k]! : k);
  return new Promise<void>((resolve, reject) => {
    const finish = (err: unknown): void => {
      if (failed !== null) return;
      failed = err ?? false;
      for (const w of workers) void w.terminate();
      if (err) reject(err); else resolve();
    };
    const canDispatch = (): boolean => failed === null && next < tasks.length && taskAt(next) < deliver + window;
    const fits = (w: Worker & { inflight?: number; queued?: number }): boolean => {
      const inflight = w.inflight ?? 0;
      if (inflight === 0) return true;
      if (inflight >= depth) return false;
      if (!sizeOf) return inflight < Math.max(2, Math.ceil((tasks.length - next) / total)); // near the end, queue less
      const share = (undispatched + workers.reduce((a, x) => a + (x.queued ?? 0), 0)) / total;
      return (w.queued ?? 0) + sizeOf[taskAt(next)]! <= share;
    };
    const feed = (w: Worker & { inflight?: number; queued?: number }): void => {
      while (canDispatch() && fits(w)) {
        const id = taskAt(next++);
        w.inflight = (w.inflight ?? 0) + 1;
        if (sizeOf) { w.queued = (w.queued ?? 0) + sizeOf[id]!; undispatched -= sizeOf[id]!; }
        w.postMessage({ id, task: tasks[id] } satisfies TaskMsg<T>);
      }
    };
    /** Stores a result and delivers every result that is now in order. */
    const accept = (id: number, r: R): boolean => {
      pending.set(id, r);
      try {
        while (pending.has(deliver)) {
          const x = pending.get(deliver)!;
          pending.delete(deliver);
          o.onResult(deliver, x);
          deliver++;
        }
      } catch (err) { finish(err); return false; }
      if (deliver === tasks.length) { finish(null); return false; }
      for (const w of workers) feed(w); // the window may have opened
      return true;
    };
    let localIdle = true;
    const localStep = (): void => {
      localIdle = false;
      if (!canDispatch()) { localIdle = true; return; }
      const id = taskAt(next++);
      if (sizeOf) undispatched -= sizeOf[id]!;
      let r: R;
      try { r = o.local!(tasks[id]!); } catch (err) { finish(err); return; }
      if (accept(id, r)) setImmediate(localStep);
    };
    for (const w of started.splice(nWorkers)) void w.terminate();
    for (let k = 0; k < nWorkers; k++) {
      const w: Worker & { inflight?: number; queued?: number } = started[k] ?? spawn(o.worker, o.workerData);
      workers.push(w);
      w.on('message', (m: ResultMsg<R>) => {
        if (m.error) {
          const e = m.error;
          const err = e.code !== undefined ? new RlvrError(e.message, { file: e.file, code: e.code, exitCode: e.exitCode }) : new Error(e.message);
          if (e.stack && !(err instanceof RlvrError)) err.stack = e.stack;
          finish(err);
          return;
        }
        w.inflight = (w.inflight ?? 1) - 1;
        if (sizeOf) w.queued = (w.queued ?? 0) - sizeOf[m.id]!;
        if (accept(m.id, m.result as R)) {
          feed(w);
          if (o.local && localIdle) { localIdle = false; setImmediate(localStep); }
        }
      });
      w.on('error', (err) => finish(err));
      w.on('exit', (code) => { if (code !== 0 && failed === null) finish(new Error(`worker exited with code ${code}`)); });
      if (earlyFailures.has(w)) { finish(earlyFailures.get(w)); return; }
      feed(w);
    }
    if (o.local) { localIdle = false; setImmediate(localStep); }
  });
}

/** Errors (or non-zero exits) of workers started ahead, before `runOrdered` listened to them. */
const earlyFailures = new WeakMap<Worker, unknown>();

/** Starts a pool worker ahead of `runOrdered` (pass it as `started`; terminate it if not used). */
export function startWorker(url: URL, data: unknown): Worker {
  const w = spawn(url, data);
  w.once('error', (err) => { if (!earlyFailures.has(w)) earlyFailures.set(w, err); });
  w.once('exit', (code) => { if (code !== 0 && !earlyFailures.has(w)) earlyFailures.set(w, new Error(`worker exited with code ${code}`)); });
  return w;
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
  // workers inherit the parent's flags; --input-type (from `node -e`) is rejected there
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
  return new Worker(fileURLToPath(url), { workerData: data, execArgv });
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
