/**
 * `writeReport(dir)`: reads the analysis folder's data files and writes `dir/report.html`
 * (atomically), one self-contained file. `rlvr-lens report DIR` and the last stage of
 * `rlvr-lens analyze` both call it.
 */
import * as path from 'node:path';
import { RlvrError } from '../../errors.js';
import { writeFileAtomic } from '../../io/writer.js';
import { buildReportData } from './build.js';
import { loadReportBundle } from './bundle.js';
import { loadAnalysis } from './load.js';
import type { ReportData, RunInfo } from './model.js';
import { renderReportHtml } from './render.js';

export interface WriteReportOptions {
  /** Output file (default `<dir>/report.html`). */
  out?: string;
  title?: string;
  /** Training family per run label (or spec), overriding the manifest and the name-based guess. */
  roles?: Record<string, RunInfo['role']>;
}

export interface WriteReportResult {
  path: string;
  bytes: number;
  data: ReportData;
  /** Problems with input files (skipped), one line each. */
  problems: string[];
}

/** Builds the report HTML string for an analysis folder (no writing). */
export async function buildReportHtml(dir: string, opts: { title?: string; roles?: Record<string, RunInfo['role']> } = {}): Promise<{ html: string; data: ReportData; problems: string[] }> {
  const a = loadAnalysis(dir);
  if (a.docs.size === 0 && a.logs.length === 0) {
    throw new RlvrError(`no rlvr-lens data files here (expected <stage>.json files from rlvr-lens analyze)${a.problems.length ? `; ${a.problems.join('; ')}` : ''}`, { file: dir });
  }
  const data = buildReportData(a, opts);
  const html = renderReportHtml(data, await loadReportBundle());
  return { html, data, problems: a.problems };
}

export async function writeReport(dir: string, opts: WriteReportOptions = {}): Promise<WriteReportResult> {
  const { html, data, problems } = await buildReportHtml(dir, { title: opts.title, roles: opts.roles });
  const out = opts.out ?? path.join(dir, 'report.html');
  writeFileAtomic(out, html);
  return { path: out, bytes: Buffer.byteLength(html, 'utf8'), data, problems };
}

export type { ReportData } from './model.js';
export { MapsCollector, DEFAULT_MAPS, mapSide, poolMask, type MapsOptions, type MapsDocument } from './maps.js';
export { runDemo, defaultDemoSet, labDemoSet, localityDemoSet, interventionOverlap, type DemoSet, type DemoOptions, type DemoResult } from './demo.js';
