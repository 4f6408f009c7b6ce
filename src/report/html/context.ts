/**
 * What the stage adapters share while a report is built: the tuned models (runs) under
 * stable ids, the tensors, the per-(run, tensor/layer/kind) metrics that feed the merged
 * tables, the paper's claims, and Table 1.
 */
import * as path from 'node:path';
import { parseTensorName } from '../../model/names.js';
import type { Claim, ColumnSpec, RunInfo, TableBlock, TensorInfo } from './model.js';

export type Level = 'tensor' | 'layer' | 'kind';

export interface MetricRow {
  run: string | null;
  level: Level;
  /** Tensor name, layer number as text, or module kind. */
  key: string;
  values: Record<string, number | string | null>;
}

/** Short, readable label of a checkpoint spec: its last path component(s). */
export function runLabel(spec: string): string {
  const clean = spec.replace(/[\\/]+$/, '').replace(/\.safetensors$/, '').replace(/[\\/]model$/, '');
  const parts = clean.split(/[\\/]/).filter(Boolean);
  return parts.length ? parts[parts.length - 1]! : spec;
}

/** RL vs SFT from a name, when the manifest does not say: the summary compares the two families. */
export function guessRole(spec: string): RunInfo['role'] {
  const s = runLabel(spec).toLowerCase();
  if (/(^|[^a-z])sft([^a-z]|$)|instruct|distill/.test(s)) return 'sft';
  if (/(^|[^a-z])(rl|rlvr|grpo|dapo|ppo|gspo|reinforce|rloo)([^a-z0-9]|$)|^rl\d|[-_]rl/.test(s)) return 'rl';
  return 'other';
}

export class ReportContext {
  readonly runs: RunInfo[] = [];
  private readonly bySpec = new Map<string, string>();
  readonly tensors = new Map<string, TensorInfo>();
  readonly columns: ColumnSpec[] = [];
  readonly metrics: MetricRow[] = [];
  readonly claims = new Map<Claim['id'], Claim>();
  table1: TableBlock | null = null;
  readonly notes: string[] = [];

  /** Roles given by the user (`report --role label=rl|sft`), by run label or spec. */
  constructor(private readonly presetRoles: Readonly<Record<string, RunInfo['role']>> = {}) {}

  /** The run id for a checkpoint spec, registering it on first sight. */
  run(spec: string, role?: RunInfo['role'], label?: string): string {
    const key = normalizeSpec(spec);
    const known = this.bySpec.get(key);
    if (known) return known;
    // Same checkpoint named differently (relative vs absolute path)? Match on the label.
    const lab = label ?? runLabel(spec);
    const sameLabel = this.runs.find((r) => r.path !== undefined && normalizeSpec(r.path) !== key && runLabel(r.path) === lab && path.resolve(r.path) === path.resolve(spec));
    if (sameLabel) { this.bySpec.set(key, sameLabel.id); return sameLabel.id; }
    let id = lab;
    for (let i = 2; this.runs.some((r) => r.id === id); i++) id = `${lab}#${i}`;
    this.runs.push({ id, label: id, role: this.presetRoles[lab] ?? this.presetRoles[spec] ?? role ?? guessRole(spec), path: spec });
    this.bySpec.set(key, id);
    return id;
  }

  /** Existing run id for a spec, or null (does not register). */
  findRun(spec: string): string | null {
    return this.bySpec.get(normalizeSpec(spec)) ?? this.runs.find((r) => r.label === spec || r.id === spec)?.id ?? null;
  }

  tensor(name: string, shape?: readonly number[]): TensorInfo {
    let t = this.tensors.get(name);
    if (!t) {
      const p = parseTensorName(name);
      t = { name, layer: p.layer, kind: p.kind, shape: shape ? [...shape] : [] };
      this.tensors.set(name, t);
    } else if (shape && t.shape.length === 0) t.shape = [...shape];
    return t;
  }

  column(c: ColumnSpec): void {
    if (!this.columns.some((x) => x.key === c.key)) this.columns.push(c);
  }

  metric(run: string | null, level: Level, key: string, values: Record<string, number | string | null>): void {
    this.metrics.push({ run, level, key, values });
  }

  /** Family as shown in tables: RL, SFT, or '?' when neither the manifest nor the name says. */
  family(runId: string): string {
    const r = this.roleOf(runId);
    return r === 'other' ? '?' : r.toUpperCase();
  }

  roleOf(runId: string): RunInfo['role'] {
    return this.runs.find((r) => r.id === runId)?.role ?? 'other';
  }
}

function normalizeSpec(s: string): string {
  return s.replace(/[\\/]+$/, '');
}
