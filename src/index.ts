/** rlvr-lens public API. The CLI is a thin layer over these exports. */
export * from './errors.js';
export * from './version.js';
export * from './io/dtype.js';
export * from './io/safetensors.js';
export * from './io/checkpoint.js';
export * from './io/writer.js';
export * from './io/inspect.js';
export * from './model/config.js';
export * from './model/names.js';
export * from './probes/mask.js';
export * from './report/output.js';
export * from './util/random.js';
export * from './probes/update.js';
export * from './run/shard.js';
export * from './probes/magnitude.js';
export * from './synth/qwen2.js';
export * from './synth/generate.js';
