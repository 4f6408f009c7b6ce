/** Registry of subcommands: add one import and one entry per command module. */
import type { Command } from 'commander';
import { register as synth } from './synth.js';
import { register as sparsity } from './sparsity.js';
import { register as inspect } from './inspect.js';
import { register as intervene } from './intervene.js';
import { register as adapter } from './adapter.js';
import { register as masks } from './masks.js';
import { register as lab } from './lab.js';
import { register as kl } from './kl.js';
import { register as report } from './report.js';
import { register as demo } from './demo.js';
import { register as locality } from './locality.js';
import { register as dynamics } from './dynamics.js';
import { register as figure } from './figure.js';
import { register as spectrum } from './spectrum.js';
import { register as principal } from './principal.js';
import { register as merge } from './merge.js';
import { register as analyze } from './analyze.js';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  synth,
  sparsity,
  inspect,
  intervene,
  adapter,
  masks,
  lab,
  kl,
  report,
  demo,
  locality,
  dynamics,
  figure,
  spectrum,
  principal,
  merge,
  analyze,
];
