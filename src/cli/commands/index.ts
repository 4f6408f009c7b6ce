/** Registry of subcommands: add one import and one entry per command module. */
import type { Command } from 'commander';
import { register as synth } from './synth.js';
import { register as inspect } from './inspect.js';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  synth,
  inspect,
];
