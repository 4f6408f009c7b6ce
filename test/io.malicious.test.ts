/** The committed hostile files under fixtures/io/malicious: each fails with its code, and the
 * folder is exactly what the seeded generator writes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FormatError } from '../src/errors.js';
import { SAFETENSORS_ERRORS, SafetensorsFile, parseSafetensorsBuffer } from '../src/io/safetensors.js';
import { openCheckpoint } from '../src/io/checkpoint.js';
import { fixture } from './helpers.js';
import { MALICIOUS_CASES, maliciousReadme } from './io.build.js';

const dir = fixture('io', 'malicious');

test('every committed malicious file is rejected with its code, on disk and in memory', () => {
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as Record<string, string>;
  const onDisk = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort();
  assert.deepEqual(Object.keys(manifest).sort(), onDisk);
  assert.ok(onDisk.length >= 40, `${onDisk.length} files`);
  for (const file of onDisk) {
    const p = path.join(dir, file);
    const code = manifest[file]!;
    assert.throws(() => SafetensorsFile.open(p), (e: unknown) => {
      assert.ok(e instanceof FormatError, `${file}: ${String(e)}`);
      assert.equal(e.code, code, `${file}: ${e.message}`);
      assert.equal(e.file, p);
      assert.ok(!/[\n\r\u001b]/.test(e.userLine()), `${file}: message is one clean line`);
      return true;
    });
    assert.throws(() => parseSafetensorsBuffer(file, fs.readFileSync(p)), (e: unknown) => e instanceof FormatError && e.code === code);
    // Through the checkpoint layer too (the path the CLI takes).
    assert.throws(() => openCheckpoint(p), (e: unknown) => e instanceof FormatError && e.code === code);
  }
});

test('the malicious set covers every code a file on disk can produce', () => {
  const covered = new Set(MALICIOUS_CASES.map((c) => c.code));
  const missing = Object.keys(SAFETENSORS_ERRORS).filter((c) => !covered.has(c as keyof typeof SAFETENSORS_ERRORS) && c !== 'E_NOT_FILE');
  assert.deepEqual(missing, []);
});

test('fixtures/io/malicious is byte-identical to what make-fixtures.ts generates', () => {
  for (const c of MALICIOUS_CASES) {
    assert.deepEqual(new Uint8Array(fs.readFileSync(path.join(dir, c.file))), c.bytes(), c.file);
  }
  assert.equal(fs.readFileSync(path.join(dir, 'README.md'), 'utf8'), maliciousReadme());
  const files = fs.readdirSync(dir).sort();
  assert.deepEqual(files, [...MALICIOUS_CASES.map((c) => c.file), 'README.md', 'manifest.json'].sort());
  const total = files.reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
  assert.ok(total < 1_000_000, `malicious fixtures take ${total} bytes`);
});
