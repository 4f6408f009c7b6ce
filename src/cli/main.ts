#!/usr/bin/env node
/**
 * The `rlvr-lens` command. Each subcommand lives in ./commands/<name>.ts and exports
 * `register(program)`; this file only wires them up and turns errors into one line.
 */
import { Command } from 'commander';
import { RlvrError } from '../errors.js';
import { VERSION } from '../version.js';
import { COMMANDS } from './commands/index.js';

export async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('rlvr-lens')
    .description('Weight-space analysis of RLVR vs SFT checkpoints ("The Path Not Taken", Zhu et al. 2025)')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of COMMANDS) register(program);
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    return reportError(e);
  }
}

/** Prints one line for a user-facing error; internal errors get a stack only with RLVR_DEBUG=1. */
export function reportError(e: unknown): number {
  const ce = e as { code?: string; exitCode?: number };
  if (typeof ce?.code === 'string' && ce.code.startsWith('commander.')) {
    // commander already printed help/version/usage errors.
    return ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version' || ce.code === 'commander.help' ? 0 : 2;
  }
  if (e instanceof RlvrError) {
    process.stderr.write(`rlvr-lens: ${e.userLine()}\n`);
    return e.exitCode;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`rlvr-lens: internal error: ${msg}\n`);
  if (process.env.RLVR_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  return 1;
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop() ?? '');
if (isMain) {
  main(process.argv).then((code) => { process.exitCode = code; }, (e) => { process.exitCode = reportError(e); });
}
