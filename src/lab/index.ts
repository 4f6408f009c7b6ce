/** The lab's public API (exported from the package as the `lab` namespace). */
export * from './model.js';
export * from './optim.js';
export * from './io.js';
export * from './tasks.js';
export * from './generate.js';
export * from './sft.js';
export * from './rl.js';
export * from './adapters.js';
export * from './runs.js';
export * from './reproduce.js';
export * from './analyze.js';
export * from './hfmodel.js';
export * from './kl.js';
