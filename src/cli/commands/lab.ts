/**
 * `rlvr-lens lab ...`: the CPU lab — train a tiny Qwen2-style model with SFT and RLVR and
 * regenerate the shipped demo set.
 *   lab reproduce [--out DIR] [--jobs N] [--only a,b] [--check]
 *   lab rl --base DIR --out DIR [--algo grpo|dapo] [--task add2x1] [--steps N] [--lr X] [--mask FILE] ...
 *   lab pretrain --out DIR [--layers 4 --hidden 128 --heads 4 --kv-heads 2] [--steps N] [--corrupt 0.3]
 *   lab sft --base DIR --out DIR [--task add2x2] [--examples N] [--epochs N] [--lr X]
 *   lab eval --model DIR [--task add2x1]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { evaluate } from '../../lab/generate.js';
import { loadLabCheckpoint } from '../../lab/io.js';
import { checkSha256Sums, demoRecipe, experimentsRecipe, maskedRecipe, reproduce } from '../../lab/reproduce.js';
import { type PretrainSpec, type RlSpec, type SftSpec, executeRun } from '../../lab/runs.js';
import { DEFAULT_LAB_CONFIG } from '../../lab/model.js';
import { BOS, EOS, VOCAB_SIZE, maxAnswerTokens, mixture, promptSet } from '../../lab/tasks.js';
import { envelope, toJson, toMarkdown } from '../../report/output.js';
import { ensureDir, writeFileAtomic } from '../../io/writer.js';
import { analyzeLab } from '../../lab/analyze.js';

function num(v: string, what: string, min = -Infinity, max = Infinity): number {
  const x = Number(v);
  if (!Number.isFinite(x) || x < min || x > max) throw new UsageError(`${what} must be a number in [${min}, ${max}], not ${JSON.stringify(v)}`);
  return x;
}
function int(v: string, what: string, min = 0, max = 1e9): number {
  const x = num(v, what, min, max);
  if (!Number.isInteger(x)) throw new UsageError(`${what} must be an integer, not ${JSON.stringify(v)}`);
  return x;
}
function checkMixture(s: string): string {
  try { mixture(s); } catch (e) { throw new UsageError((e as Error).message); }
  return s;
}

/** Runs a single spec with `from` = an absolute parent folder, writing into out's parent. */
async function runOne(spec: RlSpec | SftSpec | PretrainSpec, out: string, force: boolean): Promise<void> {
  const dir = path.resolve(out);
  if (fs.existsSync(dir)) {
    if (!force) throw new UsageError(`${out} exists (use --force to replace it)`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await executeRun(path.dirname(dir), { ...spec, name: path.basename(dir) }, (name, rec) => process.stderr.write(`${name}: ${JSON.stringify(rec)}\n`));
}

export function register(program: Command): void {
  const lab = program.command('lab').description('the CPU lab: a tiny Qwen2-style model trained with SFT and RLVR (GRPO/DAPO); regenerates the demo checkpoints');

  lab.command('reproduce')
    .description('regenerate the shipped demo set (fixtures/demo) bit for bit: base, SFT, RL runs, intermediate checkpoints, an RL run from a rotated/permuted base')
    .option('--out <dir>', 'output folder', 'fixtures/demo')
    .option('--jobs <n>', 'runs trained in parallel (worker threads)', '2')
    .option('--only <names>', 'comma-separated run names to redo (their parents must exist in --out)')
    .option('--check', 'after writing, compare with the SHA256SUMS of fixtures/demo (exit 1 on any difference)')
    .option('--list', 'print the recipe as JSON and exit')
    .option('--set <name>', 'demo (the shipped set), experiments (Gate III, learning rates, LoRA/PiSSA/MiLoRA) or masked (masks from the base, then sparse RL)', 'demo')
    .option('--parents <dir>', 'for --set experiments/masked: where the parent runs (base) are copied from', 'fixtures/demo')
    .action(async (o: { out: string; jobs: string; only?: string; check?: boolean; list?: boolean; set: string; parents: string }) => {
      const recipe = o.set === 'demo' ? demoRecipe() : o.set === 'experiments' ? experimentsRecipe()
        : o.set === 'masked' ? maskedRecipe() : null;
      if (!recipe) throw new UsageError(`--set must be demo, experiments or masked, not ${JSON.stringify(o.set)}`);
      if (o.list) { process.stdout.write(toJson(envelope('lab-recipe', { runs: recipe }))); return; }
      const jobs = int(o.jobs, '--jobs', 1, 64);
      const only = o.only ? o.only.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
      if (only) for (const n of only) if (!recipe.some((r) => r.name === n)) throw new UsageError(`--only: no run named ${JSON.stringify(n)} in the recipe`);
      if (o.set !== 'demo') {
        for (const r of recipe) {
          if (r.kind === 'pretrain' || recipe.some((x) => x.name === r.from) || fs.existsSync(path.join(o.out, r.from))) continue;
          const src = path.join(o.parents, r.from);
          if (!fs.existsSync(path.join(src, 'config.json'))) throw new UsageError(`parent run ${r.from} not found in ${o.parents}`);
          fs.cpSync(src, path.join(o.out, r.from), { recursive: true });
        }
      }
      const r = await reproduce({ out: o.out, jobs, recipe, ...(only ? { only } : {}), onEvent: (m) => process.stderr.write(`lab: ${m}\n`) });
      process.stderr.write(`lab: wrote ${r.files} files to ${r.out} in ${r.wallSeconds.toFixed(1)} s wall, ${r.cpuSeconds.toFixed(1)} s CPU (this process and its workers)\n`);
      if (o.check) {
        const shipped = path.resolve('fixtures/demo');
        const a = fs.readFileSync(path.join(shipped, 'SHA256SUMS'), 'utf8');
        const b = fs.readFileSync(path.join(o.out, 'SHA256SUMS'), 'utf8');
        if (a !== b) {
          process.stderr.write('lab: the regenerated set differs from fixtures/demo/SHA256SUMS\n');
          process.exitCode = 1;
        } else process.stderr.write('lab: identical to fixtures/demo/SHA256SUMS\n');
      }
    });

  lab.command('verify')
    .description('check a demo folder against its SHA256SUMS')
    .option('--dir <dir>', 'folder', 'fixtures/demo')
    .action((o: { dir: string }) => {
      if (!fs.existsSync(path.join(o.dir, 'SHA256SUMS'))) throw new UsageError(`${o.dir} has no SHA256SUMS`);
      const bad = checkSha256Sums(o.dir);
      for (const b of bad) process.stdout.write(`${b}\n`);
      if (bad.length) process.exitCode = 1; else process.stdout.write('ok\n');
    });

  lab.command('rl')
    .description('RLVR (GRPO or DAPO) from a lab checkpoint; writes model.safetensors (bf16 unless --save-dtype F32), config.json, log.jsonl (reward, accuracy, KL to the base both directions)')
    .requiredOption('--base <dir>', 'starting checkpoint (also the KL reference)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--algo <a>', 'grpo or dapo', 'grpo')
    .option('--task <mix>', 'RL prompt mixture, e.g. add2x1 or add1x1:1,sub1x1:1', 'add2x1')
    .option('--prompts <n>', 'size of the RL prompt set', '512')
    .option('--prompt-seed <n>', 'seed of the prompt set', '101')
    .option('--seed <n>', 'seed of sampling', '11')
    .option('--steps <n>', 'rollout steps', '40')
    .option('--prompts-per-step <n>', 'prompts per rollout batch', '32')
    .option('--group <n>', 'samples per prompt (G)', '8')
    .option('--mini-batches <n>', 'gradient steps per rollout batch', '2')
    .option('--lr <x>', 'AdamW learning rate', '3e-5')
    .option('--kl-coef <x>', 'β of the k3 KL penalty to the base (default: 0.001 for grpo, 0 for dapo)')
    .option('--save-every <n>', 'intermediate checkpoints every n steps (0 = none)', '0')
    .option('--save-dtype <d>', 'BF16 or F32', 'BF16')
    .option('--mask <file>', 'trainable mask (safetensors, 1 = trainable) for sparse RL')
    .option('--force', 'replace --out')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const algo = o.algo as string;
      if (algo !== 'grpo' && algo !== 'dapo') throw new UsageError('--algo must be grpo or dapo');
      const saveDtype = o.saveDtype as string;
      if (saveDtype !== 'BF16' && saveDtype !== 'F32') throw new UsageError('--save-dtype must be BF16 or F32');
      const spec: RlSpec = {
        kind: 'rl', name: 'x', from: path.resolve(o.base as string), seed: int(o.seed as string, '--seed'), algo,
        mixture: checkMixture(o.task as string), prompts: int(o.prompts as string, '--prompts', 1), promptSeed: int(o.promptSeed as string, '--prompt-seed'),
        steps: int(o.steps as string, '--steps', 1), promptsPerStep: int(o.promptsPerStep as string, '--prompts-per-step', 1),
        groupSize: int(o.group as string, '--group', 2), miniBatches: int(o.miniBatches as string, '--mini-batches', 1), lr: num(o.lr as string, '--lr', 0, 1),
        saveEvery: int(o.saveEvery as string, '--save-every'), saveDtype,
        ...(o.klCoef !== undefined ? { klCoef: num(o.klCoef as string, '--kl-coef', 0) } : {}),
        ...(o.mask ? { maskFile: path.resolve(o.mask as string) } : {}),
      };
      await runOne(spec, o.out as string, o.force === true);
    });

  lab.command('pretrain')
    .description('pretrain a lab model from scratch (answers corrupted with --corrupt probability, so RL has signal); writes a bf16 checkpoint')
    .requiredOption('--out <dir>', 'output folder')
    .option('--task <mix>', 'pretraining mixture', 'add1x1,sub1x1,mul1x1,add2x1,sub2x1')
    .option('--layers <n>', 'decoder layers', String(DEFAULT_LAB_CONFIG.numLayers))
    .option('--hidden <n>', 'hidden size', String(DEFAULT_LAB_CONFIG.hiddenSize))
    .option('--intermediate <n>', 'SwiGLU width', String(DEFAULT_LAB_CONFIG.intermediateSize))
    .option('--heads <n>', 'query heads', String(DEFAULT_LAB_CONFIG.numHeads))
    .option('--kv-heads <n>', 'key/value heads', String(DEFAULT_LAB_CONFIG.numKvHeads))
    .option('--steps <n>', 'steps', '400')
    .option('--batch <n>', 'batch size', '64')
    .option('--lr <x>', 'peak learning rate (warmup 20, cosine)', '3e-3')
    .option('--corrupt <p>', 'fraction of answers with one digit replaced', '0.3')
    .option('--seed <n>', 'seed', '1')
    .option('--force', 'replace --out')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const hidden = int(o.hidden as string, '--hidden', 2), heads = int(o.heads as string, '--heads', 1), kv = int(o.kvHeads as string, '--kv-heads', 1);
      if (hidden % heads !== 0 || (hidden / heads) % 2 !== 0) throw new UsageError('--hidden must be a multiple of --heads with an even head dimension');
      if (heads % kv !== 0) throw new UsageError('--heads must be a multiple of --kv-heads');
      const config = {
        ...DEFAULT_LAB_CONFIG, vocabSize: VOCAB_SIZE, bosTokenId: BOS, eosTokenId: EOS, hiddenSize: hidden, numHeads: heads, numKvHeads: kv, headDim: hidden / heads,
        numLayers: int(o.layers as string, '--layers', 1), intermediateSize: int(o.intermediate as string, '--intermediate', 1),
      };
      const spec: PretrainSpec = {
        kind: 'pretrain', name: 'x', config, seed: int(o.seed as string, '--seed'), mixture: checkMixture(o.task as string),
        steps: int(o.steps as string, '--steps', 1), batchSize: int(o.batch as string, '--batch', 1), lr: num(o.lr as string, '--lr', 0, 1), warmup: 20,
        corruptProb: num(o.corrupt as string, '--corrupt', 0, 1),
      };
      await runOne(spec, o.out as string, o.force === true);
    });

  lab.command('sft')
    .description('supervised fine-tuning on teacher (correct) answers')
    .requiredOption('--base <dir>', 'starting checkpoint')
    .requiredOption('--out <dir>', 'output folder')
    .option('--task <mix>', 'SFT data mixture', 'add2x2')
    .option('--examples <n>', 'dataset size', '2048')
    .option('--epochs <n>', 'epochs', '2')
    .option('--batch <n>', 'batch size', '32')
    .option('--lr <x>', 'AdamW learning rate', '3e-4')
    .option('--seed <n>', 'seed', '2')
    .option('--save-dtype <d>', 'BF16 or F32', 'BF16')
    .option('--force', 'replace --out')
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const saveDtype = o.saveDtype as string;
      if (saveDtype !== 'BF16' && saveDtype !== 'F32') throw new UsageError('--save-dtype must be BF16 or F32');
      const spec: SftSpec = {
        kind: 'sft', name: 'x', from: path.resolve(o.base as string), seed: int(o.seed as string, '--seed'), mixture: checkMixture(o.task as string),
        examples: int(o.examples as string, '--examples', 1), epochs: int(o.epochs as string, '--epochs', 1), batchSize: int(o.batch as string, '--batch', 1),
        lr: num(o.lr as string, '--lr', 0, 1), warmup: 10, saveDtype,
      };
      await runOne(spec, o.out as string, o.force === true);
    });

  lab.command('analyze')
    .description("the paper's measurements on the lab checkpoints (sparsity, Jaccard, M_princ/M_low overlap, angles/NSS, intervention, KL/reward curves), each beside its baseline")
    .option('--demo <dir>', 'the demo set', 'fixtures/demo')
    .option('--experiments <dir>', 'folder of `lab reproduce --set experiments` / `--set masked` runs')
    .option('--k <k>', 'rank of M_princ and of the angle subspaces', '16')
    .option('--out <dir>', 'write analysis.json and analysis.md here')
    .action(async (o: { demo: string; experiments?: string; k: string; out?: string }) => {
      const r = await analyzeLab({ demo: o.demo, ...(o.experiments ? { experiments: o.experiments } : {}), k: int(o.k, '--k', 1) });
      const md = [
        ...Object.values(r.tables).map((t) => `### ${t.title}\n\n${toMarkdown({ columns: t.columns, rows: t.rows }, 4)}`),
        ...r.notes.map((n) => `_${n}_`),
        ...(r.skipped.length ? [`_not available (skipped): ${r.skipped.join(', ')}_`] : []),
      ].join('\n\n') + '\n';
      if (o.out) {
        ensureDir(o.out);
        writeFileAtomic(path.join(o.out, 'analysis.json'), toJson(envelope('lab-analysis', r)));
        writeFileAtomic(path.join(o.out, 'analysis.md'), md);
      }
      process.stdout.write(md);
    });

  lab.command('eval')
    .description('greedy and sampled exact-match accuracy of a lab checkpoint on a task')
    .requiredOption('--model <dir>', 'lab checkpoint')
    .option('--task <mix>', 'task mixture', 'add2x1')
    .option('--n <n>', 'problems', '200')
    .option('--seed <n>', 'seed of problems and sampling', '7')
    .option('--json', 'JSON output')
    .action((o: { model: string; task: string; n: string; seed: string; json?: boolean }) => {
      const { config, params } = loadLabCheckpoint(o.model);
      const mix = mixture(checkMixture(o.task));
      const seed = int(o.seed, '--seed');
      const probs = promptSet(mix, int(o.n, '--n', 1), seed);
      const ev = evaluate(config, params, probs, Math.max(...mix.tasks.map(maxAnswerTokens)), seed);
      if (o.json) process.stdout.write(toJson(envelope('lab-eval', { model: o.model, task: o.task, n: probs.length, seed, ...ev })));
      else process.stdout.write(`${o.model} on ${o.task} (${probs.length} problems): greedy accuracy ${ev.greedy.toFixed(3)}, sampled accuracy ${ev.sampled.toFixed(3)}\n`);
    });
}
