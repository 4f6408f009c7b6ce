/**
 * The report in a real browser: Debian's headless Chromium driven by playwright-core
 * (never a downloaded browser). Loads report.html from disk with every request routed:
 * anything but the file itself fails the test. Checks: no console errors, Table 1 shows
 * the fixture's sparsity, the heatmap canvas is not blank, zoom and layer selection change
 * it, hovering shows values, sorting works. Saves screenshots under test-artifacts/.
 *
 * Without /usr/bin/chromium the tests skip and say so, unless REQUIRE_BROWSER=1 (CI).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeReport } from '../src/report/html/index.js';
import { repoRoot, tempDir } from './helpers.js';
import { buildSampleAnalysis } from './report.helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const have = fs.existsSync(CHROMIUM);
const required = process.env.REQUIRE_BROWSER === '1';
const skip = !have && !required ? `no Chromium at ${CHROMIUM} (apt-get install chromium; REQUIRE_BROWSER=1 makes this a failure)` : false;
if (skip) process.stderr.write(`browser tests skipped: ${skip}\n`);

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

test('report.html in headless Chromium: offline, no errors, numbers, heatmap, selection, screenshots', { skip, timeout: 120_000 }, async () => {
  assert.ok(have, `REQUIRE_BROWSER=1 but no Chromium at ${CHROMIUM}`);
  const { chromium } = await import('playwright-core');
  const dir = tempDir('rlvr-browser-');
  const expected = await buildSampleAnalysis(dir, { withLogs: true });
  // Rebuilt from the data files (analyze wrote one already), saying which runs are RL.
  const { path: file } = await writeReport(dir, { roles: { 'run-a': 'rl', 'run-b': 'rl', 'run-c': 'rl' } });
  const url = `file://${file}`;
  const artifacts = path.join(repoRoot(), 'test-artifacts');
  fs.mkdirSync(artifacts, { recursive: true });

  const ctx = await chromium.launchPersistentContext(tempDir('rlvr-chromium-profile-'), {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1300, height: 1000 },
  });
  try {
    const page = await ctx.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    // Errors fail the test; so do warnings, except the one our own getImageData readbacks cause.
    page.on('console', (m) => {
      if (m.type() === 'error' || (m.type() === 'warning' && !m.text().includes('willReadFrequently'))) problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await ctx.route('**/*', (route) => {
      const u = route.request().url();
      requests.push(u);
      return u === url ? route.continue() : route.abort();
    });
    await page.goto(url);
    await page.waitForFunction('document.documentElement.dataset.ready === "1"', null, { timeout: 20_000 });

    // Summary: Table 1 shows each run's sparsity as a percentage with two decimals.
    const t1 = await page.locator('#tbl-table1 tbody').innerText();
    for (const [run, s] of Object.entries(expected.sparsity)) {
      assert.match(t1, new RegExp(`${run}\\s+RL\\s+${(s * 100).toFixed(2).replace('.', '\\.')}%`), `Table 1 row for ${run}:\n${t1}`);
    }
    const claim = await page.locator('#claim-consistent').innerText();
    assert.ok(claim.includes(expected.meanJaccard.toPrecision(4)), `mean Jaccard ${expected.meanJaccard.toPrecision(4)} in:\n${claim}`);
    const off = await page.locator('#claim-off-principal').innerText();
    for (const [run, v] of Object.entries(expected.principalOverlap)) assert.ok(off.includes(String(Number(v.toPrecision(4)))), `${run} overlap ${v} in:\n${off}`);
    await page.screenshot({ path: path.join(artifacts, 'report-summary.png') });

    // Heatmap: non-blank, changes with zoom and with the layer selector.
    const canvas = page.locator('canvas[data-role=heatmap]').first();
    await canvas.scrollIntoViewIfNeeded();
    // Runs in the page (as text: this project's TypeScript has no DOM types).
    const PIXELS = `(c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      let h = 0;
      for (let i = 0; i < d.length; i += 4) { const v = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2]; seen.add(v); h = (Math.imul(h, 31) + v) | 0; }
      return { distinct: seen.size, hash: h, tensor: c.dataset.tensor || '' };
    }`;
    const pixels = async (): Promise<{ distinct: number; hash: number; tensor: string }> =>
      (await canvas.evaluate(`(${PIXELS})(document.querySelector('canvas[data-role=heatmap]'))`)) as { distinct: number; hash: number; tensor: string };
    const before = await pixels();
    assert.ok(before.distinct > 8, `heatmap has ${before.distinct} distinct colours`);
    assert.equal(before.tensor, 'model.layers.0.self_attn.q_proj.weight', 'starts at the middle layer (as the dynamics stage picks it), module q');
    await page.locator('.heatmap-block').first().screenshot({ path: path.join(artifacts, 'report-heatmap.png') });

    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.4);
    const tip = await page.locator('.tip').innerText();
    assert.match(tip, /row \d+, col \d+/);
    assert.match(tip, /run-a: [0-9.]+/);
    await page.mouse.wheel(0, -400);
    const zoomed = await pixels();
    assert.notEqual(zoomed.hash, before.hash, 'wheel zoom redraws');

    const rowsFigBefore = await page.locator('[data-figure=dyn-rows]').getAttribute('data-key');
    await page.selectOption('#sel-layer', '1');
    const after = await pixels();
    assert.equal(after.tensor, 'model.layers.1.self_attn.q_proj.weight');
    assert.notEqual(after.hash, zoomed.hash, 'selecting a layer changes the heatmap');
    assert.equal(await page.locator('[data-figure=dyn-rows]').getAttribute('data-key'), 'model.layers.1.self_attn.q_proj.weight');
    assert.equal(rowsFigBefore, 'model.layers.0.self_attn.q_proj.weight');
    await page.selectOption('#sel-kind', 'down');
    assert.equal((await pixels()).tensor, 'model.layers.1.mlp.down_proj.weight');
    await page.selectOption('[data-role=heatmap-view]', 'run-b');
    assert.notEqual((await pixels()).hash, after.hash);
    await page.locator('.heatmap-block').first().screenshot({ path: path.join(artifacts, 'report-heatmap-layer1-down.png') });

    // Sorting Table 1 by sparsity (descending first) puts the sparsest run on top.
    await page.locator('#tbl-table1 th', { hasText: 'sparsity (all tensors)' }).click();
    const top = await page.locator('#tbl-table1 tbody tr').first().locator('td').first().innerText();
    const sparsest = Object.entries(expected.sparsity).sort((a, b) => b[1] - a[1])[0]![0];
    assert.equal(top, sparsest);
    // Filtering the per-tensor table.
    const merged = page.locator('#tbl-merged-tensor');
    await merged.locator('input.filter').fill('layers.1 up_proj');
    assert.match(await merged.locator('.count').innerText(), /^3 of \d+ rows$/);

    await page.screenshot({ path: path.join(artifacts, 'report-full.png'), fullPage: true });
    assert.deepEqual(problems, []);
    assert.deepEqual(requests, [url], 'the report requests nothing but itself');
  } finally {
    await ctx.close();
  }
});
