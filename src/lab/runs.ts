/**
 * Lab runs as data: a run spec (pretrain / sft / rl / intervene) names its parent run, and
 * `executeRun` writes `<root>/<name>/` with model.safetensors + config.json + log.jsonl +
 * run.json (the spec). Everything is a pure function of the spec and the parent's files,
 * so a set of runs is regenerated bit for bit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RlvrError } from '../errors.js';
import { openCheckpoint } from '../io/checkpoint.js';
import { writeFileAtomic } from '../io/writer.js';
import { intervene } from '../interventions/intervene.js';
import { toJson } from '../report/output.js';
import { Rng } from '../util/random.js';
import { cloneParams, loadLabCheckpoint, saveLabCheckpoint, type SaveDType, writeLabTokenizer } from './io.js';
import { type LabModelConfig, type Params, initParams } from './model.js';
import type { AdapterSpec } from './adapters.js';
import { type RlAlgo, type LossAgg, rlPreset, trainRl } from './rl.js';
import { round, trainSupervised } from './sft.js';
import { type MaskKind, buildMasks } from '../export/masks.js';
import { lowMagnitudeMask, principalMask } from '../probes/principal.js';
import { type Example, makeExample, maxAnswerTokens, mixture, promptSet, sampleFromMixture } from './tasks.js';

export interface PretrainSpec {
  kind: 'pretrain'; name: string; config: LabModelConfig; seed: number;
  mixture: string; steps: number; batchSize: number; lr: number; warmup: number; corruptProb: number;
}
export interface SftSpec {
  kind: 'sft'; name: string; from: string; seed: number;
  /** Teacher data: correct answers on this mixture. */
  mixture: string; examples: number; epochs: number; batchSize: number; lr: number; warmup: number;
  saveDtype?: SaveDType;
}
export interface RlSpec {
  kind: 'rl'; name: string; from: string; seed: number; algo: RlAlgo;
  /** RL prompt set: `prompts` problems drawn from `mixture` with `promptSeed`. */
  mixture: string; prompts: number; promptSeed: number;
  steps: number; promptsPerStep: number; groupSize: number; miniBatches: number; lr: number;
  klCoef?: number; clipLow?: number; clipHigh?: number; lossAgg?: LossAgg; dynamicSampling?: boolean;
  weightDecay?: number;
  /** Save intermediate checkpoints every this many steps into checkpoints/step-XXXX (0 = none). */
  saveEvery?: number;
  saveDtype?: SaveDType;
  /** A mask file (safetensors, BOOL/U8 per tensor, 1 = trainable) for sparse RL. */
  maskFile?: string;
  klEvery?: number;
  /** Low-rank adapter training (LoRA / PiSSA / MiLoRA); the saved checkpoint is merged. */
  adapter?: AdapterSpec;
}
export interface InterveneSpec {
  kind: 'intervene'; name: string; from: string; seed: number; rotateLayers?: string; permuteLayers?: string;
}
/** A trainable mask for sparse RL (paper §5.1), written by src/export/masks.ts as `<name>/mask.safetensors`. */
export interface MaskSpec {
  kind: 'mask'; name: string; from: string; maskKind: MaskKind; alpha: number; rank: number; seed: number;
}
export type RunSpec = PretrainSpec | SftSpec | RlSpec | InterveneSpec | MaskSpec;

const EVAL_PROBLEMS = 200;

function parentDir(root: string, from: string): string {
  const d = path.isAbsolute(from) ? from : path.join(root, from);
  if (!fs.existsSync(path.join(d, 'config.json'))) throw new RlvrError('no lab checkpoint here (config.json missing); is the parent run written?', { file: d, code: 'ENOENT' });
  return d;
}

function maxNewFor(mixSpec: string): number {
  return Math.max(...mixture(mixSpec).tasks.map(maxAnswerTokens));
}

/** Reads a trainable-mask safetensors file into per-tensor byte masks. */
export function readMaskFile(file: string, params: Params): Map<string, Uint8Array> {
  const src = openCheckpoint(file);
  try {
    const out = new Map<string, Uint8Array>();
    for (const name of src.names) {
      const p = params.get(name);
      if (!p) continue;
      const f = src.readFloat32(name);
      if (f.length !== p.length) throw new RlvrError(`mask ${name} has ${f.length} entries, the weight ${p.length}`, { file, code: 'E_SHAPE' });
      const m = new Uint8Array(f.length);
      for (let i = 0; i < f.length; i++) m[i] = f[i] !== 0 ? 1 : 0;
      out.set(name, m);
    }
    // Tensors without a mask entry stay fully trainable only if the file says nothing about
    // them; freezing them would silently change the experiment, so say it in the log instead.
    return out;
  } finally { src.close(); }
}

/** Executes one run into `<root>/<spec.name>`; returns the folder. */
export async function executeRun(root: string, spec: RunSpec, progress?: (name: string, rec: Record<string, unknown>) => void): Promise<string> {
  const dir = path.join(root, spec.name);
  const lines: string[] = [];
  const log = (rec: Record<string, unknown>): void => { lines.push(JSON.stringify(rec)); progress?.(spec.name, rec); };
  const meta = (extra: Record<string, string> = {}): Record<string, string> => ({ 'rlvr_lens.lab_run': spec.name, ...extra });
  switch (spec.kind) {
    case 'pretrain': {
      const c = spec.config;
      const p = initParams(c, spec.seed);
      const mix = mixture(spec.mixture);
      const ev = promptSet(mix, EVAL_PROBLEMS, spec.seed + 1000);
      trainSupervised(c, p, mix, {
        steps: spec.steps, batchSize: spec.batchSize, lr: spec.lr, warmup: spec.warmup, cosine: true, weightDecay: 0.01,
        corruptProb: spec.corruptProb, seed: spec.seed, evalEvery: Math.max(1, Math.floor(spec.steps / 4)), evalProblems: ev,
        maxNew: maxNewFor(spec.mixture), log,
      });
      saveLabCheckpoint(dir, c, p, 'BF16', meta());
      break;
    }
    case 'sft': {
      const { config: c, params: p } = loadLabCheckpoint(parentDir(root, spec.from));
      const mix = mixture(spec.mixture);
      const rng = new Rng(spec.seed);
      const data: Example[] = [];
      for (let i = 0; i < spec.examples; i++) data.push(makeExample(sampleFromMixture(mix, rng), rng, 0));
      const ev = promptSet(mix, EVAL_PROBLEMS, spec.seed + 1000);
      const steps = Math.ceil((spec.examples * spec.epochs) / spec.batchSize);
      trainSupervised(c, p, mix, {
        steps, batchSize: spec.batchSize, lr: spec.lr, warmup: spec.warmup, cosine: true, weightDecay: 0.01,
        corruptProb: 0, seed: spec.seed, evalEvery: Math.max(1, Math.floor(steps / 4)), evalProblems: ev,
        maxNew: maxNewFor(spec.mixture), log, dataset: data,
      });
      saveLabCheckpoint(dir, c, p, spec.saveDtype ?? 'BF16', meta());
      break;
    }
    case 'rl': {
      const { config: c, params: ref } = loadLabCheckpoint(parentDir(root, spec.from));
      const p = cloneParams(ref);
      const mix = mixture(spec.mixture);
      const prompts = promptSet(mix, spec.prompts, spec.promptSeed);
      const ev = promptSet(mix, EVAL_PROBLEMS, spec.promptSeed + 1000);
      const preset = rlPreset(spec.algo);
      const masks = spec.maskFile ? readMaskFile(path.resolve(root, spec.maskFile), p) : undefined;
      const saveDtype = spec.saveDtype ?? 'BF16';
      const every = spec.saveEvery ?? 0;
      trainRl(c, p, ref, prompts, {
        ...preset,
        ...(spec.klCoef !== undefined ? { klCoef: spec.klCoef } : {}),
        ...(spec.clipLow !== undefined ? { clipLow: spec.clipLow } : {}),
        ...(spec.clipHigh !== undefined ? { clipHigh: spec.clipHigh } : {}),
        ...(spec.lossAgg !== undefined ? { lossAgg: spec.lossAgg } : {}),
        ...(spec.dynamicSampling !== undefined ? { dynamicSampling: spec.dynamicSampling } : {}),
        steps: spec.steps, promptsPerStep: spec.promptsPerStep, groupSize: spec.groupSize, miniBatches: spec.miniBatches,
        lr: spec.lr, weightDecay: spec.weightDecay ?? 0.01, maxNew: maxNewFor(spec.mixture), seed: spec.seed,
        klEvery: spec.klEvery ?? 1, evalEvery: Math.max(1, Math.floor(spec.steps / 4)), evalProblems: ev,
        ...(masks ? { masks } : {}),
        ...(spec.adapter ? { adapter: spec.adapter } : {}),
        log,
        onStep: (step, params) => {
          if (every > 0 && step % every === 0 && step < spec.steps) {
            saveLabCheckpoint(path.join(dir, 'checkpoints', `step-${String(step).padStart(4, '0')}`), c, params, saveDtype, meta({ 'rlvr_lens.step': String(step) }));
          }
        },
      });
      saveLabCheckpoint(dir, c, p, saveDtype, meta({ 'rlvr_lens.step': String(spec.steps) }));
      break;
    }
    case 'mask': {
      fs.mkdirSync(dir, { recursive: true });
      const res = await buildMasks({
        base: parentDir(root, spec.from), out: path.join(dir, 'mask.safetensors'), kind: spec.maskKind, alpha: spec.alpha, rank: spec.rank, seed: spec.seed, force: true,
      }, {
        principal: (_n, w, rows, cols, alpha, rank) => principalMask({ rows, cols, data: w }, rank, alpha),
        low: (_n, w, rows, cols, alpha) => lowMagnitudeMask({ rows, cols, data: w }, alpha),
      });
      lines.push(JSON.stringify({ kind: res.kind, alpha: res.alpha, rank: res.rank, seed: res.seed, trainable_fraction: round(res.fraction), trainable_fraction_of_model: round(res.fractionOfModel), by_module: res.byModule }));
      break;
    }
    case 'intervene': {
      const tmp = dir + '.intervene-tmp';
      fs.rmSync(tmp, { recursive: true, force: true });
      // intervene copies every non-weight file of its input; give it only the checkpoint
      // (not the parent's log.jsonl / run.json, which would misdescribe this folder).
      const srcTmp = dir + '.intervene-src';
      fs.rmSync(srcTmp, { recursive: true, force: true });
      fs.mkdirSync(srcTmp, { recursive: true });
      for (const f of ['model.safetensors', 'config.json']) fs.copyFileSync(path.join(parentDir(root, spec.from), f), path.join(srcTmp, f));
      intervene({
        base: srcTmp, out: tmp, seed: spec.seed,
        ...(spec.rotateLayers ? { rotateLayers: spec.rotateLayers } : {}),
        ...(spec.permuteLayers ? { permuteLayers: spec.permuteLayers } : {}),
      });
      // intervention.json records the base as given (an absolute path here); record the
      // parent run's name instead, so the folder is the same wherever it is regenerated.
      const rec = path.join(tmp, 'rlvr_lens', 'intervention.json');
      if (fs.existsSync(rec)) {
        const doc = JSON.parse(fs.readFileSync(rec, 'utf8')) as Record<string, unknown>;
        doc.base = spec.from;
        writeFileAtomic(rec, toJson(doc));
      }
      fs.mkdirSync(dir, { recursive: true });
      for (const f of fs.readdirSync(tmp)) fs.renameSync(path.join(tmp, f), path.join(dir, f));
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.rmSync(srcTmp, { recursive: true, force: true });
      writeLabTokenizer(dir);
      break;
    }
  }
  if (lines.length > 0) writeFileAtomic(path.join(dir, 'log.jsonl'), lines.join('\n') + '\n');
  writeFileAtomic(path.join(dir, 'run.json'), JSON.stringify(spec, null, 2) + '\n');
  return dir;
}

export function runParents(spec: RunSpec): string[] {
  if (spec.kind === 'pretrain') return [];
  const ps = [spec.from];
  // a relative mask file names the mask run that writes it
  if (spec.kind === 'rl' && spec.maskFile && !path.isAbsolute(spec.maskFile)) ps.push(spec.maskFile.split('/')[0]!);
  return ps;
}
