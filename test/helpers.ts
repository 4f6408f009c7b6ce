/** Shared test helpers: repo paths (tests run from test/ under tsx and from dist/test/). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json'))) {
    const up = path.dirname(d);
    if (up === d) throw new Error('package.json not found');
    d = up;
  }
  return d;
}

export function fixture(...parts: string[]): string {
  return path.join(repoRoot(), 'fixtures', ...parts);
}

/** A fresh temp folder, removed at process exit. */
export function tempDir(prefix = 'rlvr-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => { try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* ignore */ } });
  return d;
}

/** Deterministic PRNG (mulberry32) for tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Runs the real CLI in a child process (the built dist/ when tests run from dist/, the
 * sources through tsx otherwise). Tests never capture process.stdout in-process: that would
 * also swallow the test reporter's own output.
 */
export async function runCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string; out: string }> {
  const { spawn } = await import('node:child_process');
  const fromTs = fileURLToPath(import.meta.url).endsWith('.ts');
  const entry = fromTs ? ['--import', 'tsx', path.join(repoRoot(), 'src', 'cli', 'main.ts')] : [path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js')];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...entry, ...args], { cwd: repoRoot(), env: { ...process.env, RLVR_DEBUG: '' } });
    let stdout = '', stderr = '', out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; out += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; out += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, out }));
  });
}
