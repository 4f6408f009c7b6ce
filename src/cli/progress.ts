/**
 * Progress on stderr for long work: a bar when stderr is a TTY, nothing otherwise (logs
 * and CI stay clean). `--quiet` also silences it.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Advance by `n` units (bytes, tensors, ...). */
  tick(n?: number, label?: string): void;
  stop(): void;
}

const NOOP: Progress = { tick() {}, stop() {} };

export function createProgress(total: number, what: string, opts: { quiet?: boolean; unit?: 'bytes' | 'items' } = {}): Progress {
  if (opts.quiet || !process.stderr.isTTY || total <= 0) return NOOP;
  const bytes = opts.unit === 'bytes';
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${what} [{bar}] {percentage}% | {done}/{all} | eta {eta_formatted} {label}`,
    hideCursor: true,
    clearOnComplete: true,
    etaBuffer: 50,
  }, cliProgress.Presets.shades_classic);
  const fmt = (v: number): string => (bytes ? `${(v / 2 ** 30).toFixed(2)} GiB` : String(v));
  let done = 0;
  bar.start(total, 0, { done: fmt(0), all: fmt(total), label: '' });
  return {
    tick(n = 1, label = '') { done += n; bar.update(done, { done: fmt(done), all: fmt(total), label }); },
    stop() { bar.stop(); },
  };
}
