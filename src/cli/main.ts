#!/usr/bin/env node
/**
 * The `rlvr-lens` command. Each subcommand lives in ./commands/<name>.ts and exports
 * `register(program)`; this file only wires them up and turns errors into one line.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { RlvrError } from '../errors.js';
import { printable } from '../io/printable.js';
import { VERSION } from '../version.js';
import { loadCommands } from './commands/index.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('rlvr-lens')
    .description('Weight-space analysis of RLVR vs SFT checkpoints ("The Path Not Taken", Zhu et al. 2025)')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    // Usage errors carry the tool's name like every other error line.
    .configureOutput({ outputError: (str, write) => write(`rlvr-lens: ${str}`) })
    .exitOverride();
  for (const register of await loadCommands(argv)) register(program);
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    return reportError(e);
  }
}

/** Makes text safe to print as one terminal line (messages can quote hostile file contents
 * and names): control characters, separators and bidi overrides are shown escaped. */
export function oneLine(text: string, max = 2000): string {
  return printable(text, max);
}

/**
 * Maps an error to an exit code and prints it. Commander usage errors (already printed by
 * commander) exit 2, explicit --help/--version 0; an RlvrError prints exactly one line
 * `rlvr-lens: <file>: <message>` and exits with its code (2); anything else is a bug:
 * `rlvr-lens: internal error: <message>`, exit 1, with a stack only when RLVR_DEBUG=1.
 */
export function reportError(e: unknown): number {
  const ce = e as { code?: unknown; exitCode?: unknown } | null;
  if (typeof ce?.code === 'string' && ce.code.startsWith('commander.')) {
    if (ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version') return 0;
    // `rlvr-lens` with no command shows help as an error (exitCode 1): a usage error.
    if (ce.code === 'commander.help') return ce.exitCode === 0 ? 0 : 2;
    return 2;
  }
  if (e instanceof RlvrError) {
    process.stderr.write(`rlvr-lens: ${oneLine(e.userLine())}\n`);
    return e.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`rlvr-lens: internal error: ${oneLine(msg)}${process.env.RLVR_DEBUG ? '' : ' (set RLVR_DEBUG=1 for a stack trace)'}\n`);
  if (process.env.RLVR_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  return 1;
}

/** True when this module is the process entry point, also through the npm bin symlink
 * (`node_modules/.bin/rlvr-lens` → dist/src/cli/main.js), whose name differs from ours. */
function isEntryPoint(): boolean {
  const argv1 = process.argv[1];
  if (argv1 === undefined) return false;
  try {
    return fs.realpathSync(argv1) === fs.realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `rlvr-lens inspect X | head`: a closed pipe is not an error worth a stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode === undefined ? 0 : Number(process.exitCode));
    process.stderr.write(`rlvr-lens: cannot write output: ${oneLine(err.message)}\n`);
    process.exit(1);
  });
  // Errors thrown outside the command's promise chain (callbacks, workers) get the same
  // one-line treatment instead of Node's default stack dump.
  const fatal = (e: unknown): void => { process.exit(reportError(e)); };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
  main(process.argv).then((code) => { process.exitCode = code; }, (e) => { process.exitCode = reportError(e); });
}
