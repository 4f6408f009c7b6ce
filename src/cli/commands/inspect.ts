/** `rlvr-lens inspect CKPT [--json]`: tensors, dtypes, shapes, totals, shards and config of a
 * checkpoint, read from the headers only. */
import type { Command } from 'commander';
import { openCheckpoint } from '../../io/checkpoint.js';
import { formatBytes, inspectTables, summarizeCheckpoint } from '../../io/inspect.js';
import { envelope, toJson, toText } from '../../report/output.js';

export function register(program: Command): void {
  program
    .command('inspect')
    .description('list the tensors of a checkpoint (dtype, shape, bytes, layer, module kind), totals, shards and config; reads headers only')
    .argument('<checkpoint>', '.safetensors file, checkpoint folder (model.safetensors or sharded index), or Hugging Face cache id org/name[@revision]')
    .option('--json', 'print a JSON document (kind "inspect") instead of tables')
    .action((spec: string, opts: { json?: boolean }) => {
      const src = openCheckpoint(spec);
      try {
        const s = summarizeCheckpoint(src);
        if (opts.json) {
          process.stdout.write(toJson(envelope('inspect', s)));
          return;
        }
        const c = s.config;
        const lines = [
          `checkpoint  ${s.checkpoint}`,
          `shards      ${s.shards.length} (${s.shards.map((f) => `${f.file}: ${f.tensors} tensors, ${formatBytes(f.size)}`).join('; ')})`,
          `tensors     ${s.numTensors}, ${s.totalParams.toLocaleString('en-US')} parameters, ${formatBytes(s.totalBytes)}, ${s.layersInNames} layers in names`,
          c === null ? 'config      none (no config.json)'
            : `config      ${c.modelType ?? '?'} ${c.architectures.join(',')}: layers ${c.numLayers ?? '?'}, hidden ${c.hiddenSize ?? '?'}, ` +
              `intermediate ${c.intermediateSize ?? '?'}, heads ${c.numHeads ?? '?'}, kv heads ${c.numKvHeads ?? '?'}, head_dim ${c.headDim ?? '?'}, ` +
              `vocab ${c.vocabSize ?? '?'}${c.numExperts ? `, experts ${c.numExperts}` : ''}${c.tieWordEmbeddings ? ', tied embeddings' : ''}`,
          '',
        ];
        const t = inspectTables(s);
        process.stdout.write(lines.join('\n') + '\n' + toText(t.tensors) + '\n' + toText(t.dtypes));
      } finally {
        src.close();
      }
    });
}
