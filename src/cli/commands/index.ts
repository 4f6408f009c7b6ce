/** Registry of subcommands: add one import and one entry per command module. */
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
];
