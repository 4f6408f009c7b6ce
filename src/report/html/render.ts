/**
 * Turns ReportData into one self-contained HTML document: the data as an inert JSON
 * script element, the stylesheet and the bundled browser script inline. A strict
 * Content-Security-Policy (default-src 'none', the script allowed by its hash) makes the
 * "no network access" promise enforced by the browser rather than by care alone.
 */
import { createHash } from 'node:crypto';
import type { ReportData } from './model.js';
import { REPORT_CSS } from './style.js';

/** JSON that is safe inside a <script> element: `<` is escaped so `</script>` cannot occur. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))
    .replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function renderReportHtml(data: ReportData, script: string): string {
  // A script containing "</script" would end the element early; the bundle never does, but check.
  if (/<\/script/i.test(script)) throw new Error('report bundle contains </script>');
  const hash = createHash('sha256').update(script, 'utf8').digest('base64');
  const csp = `default-src 'none'; script-src 'sha256-${hash}'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="${escapeHtml(`${data.tool.name} ${data.tool.version}`)}">
<title>${escapeHtml(data.title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<div id="app"><p>Loading the report… (it needs JavaScript; everything is inside this file, nothing is fetched)</p></div>
<script id="rlvr-data" type="application/json">${jsonForScript(data)}</script>
<script>${script}</script>
</body>
</html>
`;
}
