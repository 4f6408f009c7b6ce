/** The report's stylesheet, inlined into report.html (system fonts only: no web fonts). */
export const REPORT_CSS = `
:root{--fg:#1d1d1f;--mut:#666;--line:#ddd;--bg:#fff;--acc:#1f77b4;--warn:#b35900}
*{box-sizing:border-box}
html{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
body{margin:0}
header.top{position:sticky;top:0;z-index:5;background:#fafafa;border-bottom:1px solid var(--line);padding:8px 16px}
.brand strong{font-size:16px}.brand .ver{color:var(--mut);font-size:12px}
.selectors{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin:6px 0}
.selectors label{font-size:13px;color:var(--mut)}
.selectors .current{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;color:var(--mut)}
select,input[type=search],button{font:inherit;font-size:13px;padding:2px 6px;border:1px solid #bbb;border-radius:4px;background:#fff}
button{cursor:pointer}
nav.toc{display:flex;flex-wrap:wrap;gap:12px;font-size:13px}
nav.toc a{color:var(--acc);text-decoration:none}nav.toc a.missing{color:#aaa}
main{padding:8px 16px 48px;max-width:1280px}
section{border-bottom:1px solid var(--line);padding-bottom:16px}
section[data-available=false] h2{color:#999}
h2{font-size:20px;margin:22px 0 8px}h3{font-size:15px;margin:14px 0 6px}
.note{color:var(--warn);font-size:13px}
.caption{color:var(--mut);font-size:12.5px;margin:4px 0}
.claims{display:grid;grid-template-columns:1fr;gap:12px}
.mtitle{font-size:13px;font-weight:600;margin:4px 0}
.claim{border:1px solid var(--line);border-radius:6px;padding:4px 12px 8px}
.claim.missing{opacity:.6}
.claim .statement{font-style:italic;margin:2px 0 6px}
.table-controls{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin:4px 0}
.table-controls .count{color:var(--mut);font-size:12px}
.filter{min-width:260px}
.table-wrap{overflow:auto;max-height:560px;border:1px solid var(--line)}
table.data{border-collapse:collapse;font-size:12.5px;min-width:60%}
table.data th{position:sticky;top:0;background:#f1f3f5;cursor:pointer;user-select:none;padding:4px 8px;border-bottom:1px solid #ccc;white-space:nowrap}
table.data th.sorted::after{content:" " attr(data-dir)}
table.data td{padding:3px 8px;border-bottom:1px solid #eee;white-space:nowrap}
table.data td.num,table.data th.num{text-align:right;font-variant-numeric:tabular-nums}
table.data td.txt{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
table.data tbody tr:hover{background:#f5f9ff}
button.more{margin-top:4px}
.tabbar{display:flex;gap:4px}.tabbar button[aria-selected=true]{background:var(--acc);color:#fff;border-color:var(--acc)}
.figure{max-width:760px}
svg.chart{width:100%;height:auto;background:#fff;font-family:inherit}
svg .ctitle{font-size:13px;font-weight:600}
svg .alabel{font-size:12px;fill:#444}
svg .tick{font-size:10.5px;fill:#555}
svg .grid{stroke:#eee}svg .axis{stroke:#888}
svg .hline{stroke:#000;stroke-dasharray:6 4;stroke-width:1.2}
svg .hlabel{font-size:10.5px;fill:#000}
svg .vline{stroke:#999;stroke-dasharray:3 3}
svg .marker{stroke:#000;stroke-width:2}
svg .cursor{stroke:#999}
svg .mtext{font-size:10px;fill:#000}svg .mtext.light{fill:#fff}
.legend{display:flex;flex-wrap:wrap;gap:10px;font-size:12px;margin:2px 0 4px 64px}
.legend .key i{display:inline-block;width:14px;height:4px;margin-right:4px;vertical-align:middle}
.legend .key i.dash{height:0;border-top:2px dashed #333;background:none}
.tip{position:absolute;z-index:10;display:none;background:rgba(20,20,20,.92);color:#fff;font-size:12px;padding:5px 8px;border-radius:4px;pointer-events:none;max-width:460px;font-variant-numeric:tabular-nums}
.hm-controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:4px 0}
.hm-stage{display:flex;align-items:flex-start;gap:6px}
.hm-ylabel{writing-mode:vertical-rl;transform:rotate(180deg);font-size:12px;color:#444;align-self:center}
canvas.heatmap{border:1px solid #ccc;cursor:crosshair;image-rendering:pixelated;max-width:100%}
canvas.colorbar{border:1px solid #ccc}
.cb-labels{position:relative;width:48px;font-size:11px;color:#444}
.cb-labels div{position:absolute;left:0}
.hm-xlabel{font-size:12px;color:#444;margin-left:22px}
table.kv{border-collapse:collapse;font-size:12.5px}
table.kv th{text-align:left;padding:2px 12px 2px 0;color:var(--mut);font-weight:500;vertical-align:top;white-space:nowrap}
table.kv td{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;word-break:break-all}
details.json pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:420px;font-size:12px}
.block{margin:10px 0 18px}
.fig-grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:4px 16px}
.fig-grid .block{margin:4px 0}
`;
