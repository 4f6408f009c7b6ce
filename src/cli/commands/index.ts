/**
 * Registry of subcommands: one loader per command module, each exporting `register(program)`.
 * Modules are imported lazily: `rlvr-lens sparsity ...` loads only the sparsity command (not
 * onnxruntime, the canvas or the lab), which keeps start-up cheap for I/O-bound probes.
 * Help and unknown commands load them all; `--version` alone loads none.
 */
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;
type Loader = () => Promise<{ register: RegisterCommand }>;

export const COMMAND_LOADERS: Readonly<Record<string, Loader>> = {
  synth: () => import('./synth.js'),
  sparsity: () => import('./sparsity.js'),
  inspect: () => import('./inspect.js'),
  intervene: () => import('./intervene.js'),
  adapter: () => import('./adapter.js'),
  masks: () => import('./masks.js'),
  lab: () => import('./lab.js'),
  kl: () => import('./kl.js'),
  report: () => import('./report.js'),
  demo: () => import('./demo.js'),
  locality: () => import('./locality.js'),
  dynamics: () => import('./dynamics.js'),
  figure: () => import('./figure.js'),
  spectrum: () => import('./spectrum.js'),
  principal: () => import('./principal.js'),
  merge: () => import('./merge.js'),
  analyze: () => import('./analyze.js'),
  cache: () => import('./cache.js'),
};

/** The register functions needed to parse `argv` (process.argv layout): only the named
 * command's when the first argument names one, else all of them, in the order above. */
export async function loadCommands(argv: readonly string[]): Promise<RegisterCommand[]> {
  const first = argv[2];
  if (argv.length === 3 && (first === '--version' || first === '-V')) return []; // prints the version only
  const names = first !== undefined && Object.hasOwn(COMMAND_LOADERS, first) ? [first] : Object.keys(COMMAND_LOADERS);
  const mods = await Promise.all(names.map((n) => COMMAND_LOADERS[n]!()));
  return mods.map((m) => m.register);
}
