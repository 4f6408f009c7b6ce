/**
 * Errors that reach the user as one readable line. The CLI prints `rlvr-lens: <message>`
 * (with the file first when known) and exits with `exitCode`; anything that is not an
 * RlvrError is a bug and is reported as such.
 */
export class RlvrError extends Error {
  /** The file or folder the problem is about, when there is one. */
  readonly file: string | undefined;
  /** Machine-readable error code, e.g. `E_HEADER_TOO_LARGE`. */
  readonly code: string;
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;

  constructor(message: string, opts: { file?: string; code?: string; exitCode?: number } = {}) {
    super(message);
    this.name = 'RlvrError';
    this.file = opts.file;
    this.code = opts.code ?? 'E_RLVR';
    this.exitCode = opts.exitCode ?? 2;
  }

  /** The single line shown to users. */
  userLine(): string {
    return this.file !== undefined ? `${this.file}: ${this.message}` : this.message;
  }
}

/** Malformed or hostile input (checkpoint, index, config, mask, ...). */
export class FormatError extends RlvrError {
  constructor(file: string, code: string, message: string) {
    super(message, { file, code, exitCode: 2 });
    this.name = 'FormatError';
  }
}

/** Bad command-line usage or parameters. */
export class UsageError extends RlvrError {
  constructor(message: string) {
    super(message, { code: 'E_USAGE', exitCode: 2 });
    this.name = 'UsageError';
  }
}

/** Turns a Node.js system error (ENOENT, EACCES, ENOSPC, ...) into a readable RlvrError. */
export function fromSystemError(err: unknown, file: string, action: string): RlvrError {
  const e = err as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    ENOENT: 'no such file or folder',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EISDIR: 'is a folder, expected a file',
    ENOTDIR: 'a path component is not a folder',
    EROFS: 'read-only file system',
    EEXIST: 'already exists',
    EMFILE: 'too many open files',
  };
  const why = (e && e.code && reasons[e.code]) ?? (e instanceof Error ? e.message : String(err));
  return new RlvrError(`cannot ${action}: ${why}`, { file, code: e?.code ?? 'E_IO', exitCode: 2 });
}
