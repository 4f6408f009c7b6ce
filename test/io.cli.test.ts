/**
 * The CLI contract for bad input, on the real command (a child process): exit code 2,
 * exactly one stderr line `rlvr-lens: <file>: <problem>`, no stack trace, nothing on stdout.
 * Also `inspect` on the golden fixture, usage errors, and the error reporter itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FormatError, RlvrError } from '../src/errors.js';
import { oneLine, reportError } from '../src/cli/main.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { summarizeCheckpoint } from '../src/io/inspect.js';
import { fixture, repoRoot, tempDir } from './helpers.js';

/** How to run the CLI: the built dist/ when these tests run from dist/, else the sources via tsx. */
function cliCommand(): string[] {
  const fromTs = fileURLToPath(import.meta.url).endsWith('.ts');
  return fromTs
    ? ['--import', 'tsx', path.join(repoRoot(), 'src', 'cli', 'main.ts')]
    : [path.join(repoRoot(), 'dist', 'src', 'cli', 'main.js')];
}

interface Run { code: number | null; stdout: string; stderr: string }

function cli(args: string[], argv0?: string): Promise<Run> {
  const cmd = cliCommand();
  if (argv0) cmd[cmd.length - 1] = argv0;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...cmd, ...args], { cwd: repoRoot(), env: { ...process.env, RLVR_DEBUG: '' } });
    let stdout = '', stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    p.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function assertOneLineError(r: Run, file: string, msg: RegExp): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n');
  assert.equal(lines.length, 2, `exactly one line: ${JSON.stringify(r.stderr)}`);
  assert.equal(lines[1], '');
  assert.ok(lines[0]!.startsWith(`rlvr-lens: ${file}: `), lines[0]);
  assert.match(lines[0]!, msg);
  assert.doesNotMatch(r.stderr, /\n\s+at |internal error|Error:/, 'no stack trace');
  assert.doesNotMatch(r.stderr, /[\u0000-\u0009\u000b-\u001f]/, 'no control characters');
}

test('bad input through the real CLI: exit 2, one stderr line naming the file, no stack', async () => {
  const mal = (f: string): string => fixture('io', 'malicious', f);
  const hostile = tempDir('rlvr-io-cli-');
  for (const f of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) fs.copyFileSync(fixture('io', 'tiny-sharded', f), path.join(hostile, f));
  fs.writeFileSync(path.join(hostile, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'lm_head.weight': '../../etc/passwd' } }));
  const missing = path.join(hostile, 'nope.safetensors');
  const cases: [string, string, RegExp][] = [
    [mal('polyglot-zip.safetensors'), mal('polyglot-zip.safetensors'), /data does not end exactly at the end of the file \(22 extra bytes\)$/],
    [mal('truncated-data.safetensors'), mal('truncated-data.safetensors'), /file ended before the tensor data \(data needs 16 bytes, file has 14\)$/],
    [mal('header-ansi-escape.safetensors'), mal('header-ansi-escape.safetensors'), /header is not valid JSON/],
    [hostile, path.join(hostile, 'model.safetensors.index.json'), /points outside the checkpoint folder$/],
    [missing, missing, /no such file or folder/],
  ];
  const runs = await Promise.all(cases.map(([spec]) => cli(['inspect', spec])));
  cases.forEach(([, file, msg], i) => assertOneLineError(runs[i]!, file, msg));
});

test('inspect on the golden sharded fixture: --json matches the library, text lists every tensor', async () => {
  const spec = fixture('io', 'tiny-sharded');
  const [j, t] = await Promise.all([cli(['inspect', spec, '--json']), cli(['inspect', spec])]);
  assert.equal(j.code, 0, j.stderr);
  assert.equal(j.stderr, '');
  const doc = JSON.parse(j.stdout) as Record<string, unknown>;
  assert.equal(doc.tool, 'rlvr-lens');
  assert.equal(doc.kind, 'inspect');
  assert.equal(typeof doc.schema, 'number');
  const src = openCheckpoint(spec);
  const s = summarizeCheckpoint(src);
  src.close();
  const { tool: _t, version: _v, schema: _s, kind: _k, ...body } = doc;
  assert.deepEqual(body, JSON.parse(JSON.stringify(s)));
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^checkpoint {2}.*tiny-sharded\nshards {6}2 \(model-00001-of-00002\.safetensors: 13 tensors/);
  assert.match(t.stdout, /tensors {5}27, 1,288 parameters, 2\.59 KiB, 2 layers in names/);
  assert.match(t.stdout, /config {6}qwen2 Qwen2ForCausalLM: layers 2, hidden 8, intermediate 12, heads 2, kv heads 1, head_dim 4, vocab 16/);
  for (const x of s.tensors) assert.ok(t.stdout.includes(x.name), x.name);
});

test('usage errors exit 2; --help and --version exit 0; works through a bin symlink', async () => {
  const d = tempDir('rlvr-io-bin-');
  const cmd = cliCommand();
  const link = path.join(d, 'rlvr-lens' + (cmd[cmd.length - 1]!.endsWith('.ts') ? '.ts' : ''));
  fs.symlinkSync(cmd[cmd.length - 1]!, link);
  const [none, unknown, help, version, viaLink] = await Promise.all([
    cli([]), cli(['inspect', '--bogus', 'x']), cli(['--help']), cli(['--version']), cli(['--version'], link),
  ]);
  assert.equal(none.code, 2);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^rlvr-lens: error: unknown option '--bogus'/);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /inspect/);
  assert.equal(version.code, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  assert.equal(viaLink.code, 0);
  assert.equal(viaLink.stdout, version.stdout);
});

test('reportError: RlvrError one line (control characters escaped), other errors are internal, exit 1', () => {
  const written: string[] = [];
  const orig = process.stderr.write.bind(process.stderr);
  const debug = process.env.RLVR_DEBUG;
  delete process.env.RLVR_DEBUG;
  process.stderr.write = ((s: string) => { written.push(s); return true; }) as typeof process.stderr.write;
  let codes: number[];
  try {
    codes = [
      reportError(new FormatError('a\nb.safetensors', 'E_X', 'bad \u001b[31mthing\u202e')),
      reportError(new RlvrError('plain')),
      reportError(new TypeError('x is undefined\n    at foo')),
      reportError('a string'),
    ];
  } finally {
    process.stderr.write = orig;
    if (debug !== undefined) process.env.RLVR_DEBUG = debug;
  }
  assert.deepEqual(codes, [2, 2, 1, 1]);
  assert.deepEqual(written, [
    'rlvr-lens: a\\u000ab.safetensors: bad \\u001b[31mthing\\u202e\n',
    'rlvr-lens: plain\n',
    'rlvr-lens: internal error: x is undefined\\u000a    at foo (set RLVR_DEBUG=1 for a stack trace)\n',
    'rlvr-lens: internal error: a string (set RLVR_DEBUG=1 for a stack trace)\n',
  ]);
  assert.equal(oneLine('x'.repeat(3000)).length, 2000);
});
