/**
 * Entry point of the report's inline script: reads the embedded JSON, builds the page,
 * and wires the global selection (layer, module kind → tensor; tuned model) to every
 * figure that follows it. Sets `document.documentElement.dataset.ready` when interactive.
 */
import type { Block, FigureBlock, ReportData, Section } from '../html/model.js';
import { renderFigure } from './charts.js';
import { clear, el } from './dom.js';
import { renderHeatmap } from './heatmap.js';
import { renderTable, renderTabs } from './table.js';

interface Selection { layer: string; kind: string; run: string }

type Updater = (tensor: string, sel: Selection) => void;

function readData(): ReportData {
  const node = document.getElementById('rlvr-data');
  if (!node || !node.textContent) throw new Error('report data missing');
  return JSON.parse(node.textContent) as ReportData;
}

function start(): void {
  const data = readData();
  const app = document.getElementById('app')!;
  clear(app);
  const updaters: Updater[] = [];

  // --- global selection -----------------------------------------------------------------
  const layers = [...new Set(data.tensors.map((t) => (t.layer === null ? '' : String(t.layer))))]
    .sort((a, b) => (a === '' ? 1 : b === '' ? -1 : Number(a) - Number(b)));
  const kindsAt = (layer: string): string[] => [...new Set(data.tensors.filter((t) => (t.layer === null ? '' : String(t.layer)) === layer).map((t) => t.kind))];
  const layerSel = el('select', { id: 'sel-layer', 'aria-label': 'layer' });
  for (const l of layers) layerSel.appendChild(el('option', { value: l }, l === '' ? 'not in a layer' : `layer ${l}`));
  const kindSel = el('select', { id: 'sel-kind', 'aria-label': 'module' });
  const tensorSel = el('select', { id: 'sel-tensor', 'aria-label': 'tensor' });
  const runSel = el('select', { id: 'sel-run', 'aria-label': 'tuned model' });
  for (const r of data.runs) runSel.appendChild(el('option', { value: r.id }, r.label));
  // Start at a middle layer's first attention projection, a representative default.
  const linearKinds = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'];
  const numericLayers = layers.filter((l) => l !== '');
  // The middle layer, as the dynamics stage picks it for its full profiles.
  if (numericLayers.length) layerSel.value = numericLayers[Math.floor((numericLayers.length - 1) / 2)]!;
  function fillKinds(): void {
    const prev = kindSel.value;
    clear(kindSel);
    const ks = kindsAt(layerSel.value).sort((a, b) => (linearKinds.indexOf(a) + 99 * +(linearKinds.indexOf(a) < 0)) - (linearKinds.indexOf(b) + 99 * +(linearKinds.indexOf(b) < 0)) || a.localeCompare(b));
    for (const k of ks) kindSel.appendChild(el('option', { value: k }, k));
    if (ks.includes(prev)) kindSel.value = prev;
  }
  function fillTensors(): void {
    const prev = tensorSel.value;
    clear(tensorSel);
    const ts = data.tensors.filter((t) => (t.layer === null ? '' : String(t.layer)) === layerSel.value && t.kind === kindSel.value);
    for (const t of ts) tensorSel.appendChild(el('option', { value: t.name }, t.name));
    if (ts.some((t) => t.name === prev)) tensorSel.value = prev;
    tensorSel.style.display = ts.length > 1 ? '' : 'none';
  }
  const selection = (): Selection => ({ layer: layerSel.value, kind: kindSel.value, run: runSel.value });
  const current = el('span', { class: 'current', id: 'sel-current' });
  function fire(): void {
    const tensor = tensorSel.value;
    current.textContent = tensor;
    document.documentElement.dataset.tensor = tensor;
    for (const u of updaters) u(tensor, selection());
  }
  layerSel.addEventListener('change', () => { fillKinds(); fillTensors(); fire(); });
  kindSel.addEventListener('change', () => { fillTensors(); fire(); });
  tensorSel.addEventListener('change', fire);
  runSel.addEventListener('change', fire);
  fillKinds();
  if ([...kindSel.options].some((o) => o.value === 'q')) kindSel.value = 'q';
  fillTensors();

  // --- header and navigation ------------------------------------------------------------
  const nav = el('nav', { class: 'toc' });
  const header = el('header', { class: 'top' },
    el('div', { class: 'brand' }, el('strong', {}, data.title), el('span', { class: 'ver' }, ` ${data.tool.name} ${data.tool.version} · schema ${data.tool.schema}`)),
    el('div', { class: 'selectors' },
      el('label', {}, 'Layer ', layerSel), el('label', {}, 'Module ', kindSel), tensorSel,
      el('label', {}, 'Tuned model ', runSel), current),
    nav);
  app.appendChild(header);
  const main = el('main');
  app.appendChild(main);

  // --- summary --------------------------------------------------------------------------
  const sum = el('section', { id: 'summary' }, el('h2', {}, 'Summary in the paper’s terms'));
  nav.appendChild(el('a', { href: '#summary' }, 'Summary'));
  for (const n of data.summary.notes) sum.appendChild(el('p', { class: 'note' }, n));
  if (data.summary.table1) sum.appendChild(renderTable(data.summary.table1));
  else sum.appendChild(el('p', { class: 'note' }, 'No sparsity data (sparsity.json missing): Table 1 is skipped.'));
  const claims = el('div', { class: 'claims' });
  for (const c of data.summary.claims) {
    const card = el('div', { class: `claim ${c.available ? '' : 'missing'}`, id: `claim-${c.id}`, 'data-claim': c.id },
      el('h3', {}, c.title), el('p', { class: 'statement' }, c.statement));
    if (c.note) card.appendChild(el('p', { class: 'note' }, c.note));
    if (c.table) card.appendChild(renderTable(c.table));
    claims.appendChild(card);
  }
  sum.appendChild(claims);
  main.appendChild(sum);

  // --- sections -------------------------------------------------------------------------
  for (const s of data.sections) main.appendChild(renderSection(s, data, updaters, nav));

  fire();
  document.documentElement.dataset.ready = '1';
  window.dispatchEvent(new Event('rlvr-report-ready'));
}

function renderSection(s: Section, data: ReportData, updaters: Updater[], nav: HTMLElement): HTMLElement {
  const sec = el('section', { id: `sec-${s.id}`, 'data-available': String(s.available) }, el('h2', {}, s.title));
  nav.appendChild(el('a', { href: `#sec-${s.id}`, class: s.available ? '' : 'missing' }, s.title));
  if (s.note) sec.appendChild(el('p', { class: 'note' }, s.note));
  const holder = s.layout === 'grid' ? el('div', { class: 'fig-grid' }) : sec;
  for (const b of s.blocks) {
    const node = renderBlock(b, data, updaters);
    if (!node) continue;
    if (b.type === 'figure' && holder !== sec && !holder.parentNode) sec.appendChild(holder);
    (b.type === 'figure' ? holder : sec).appendChild(node);
  }
  return sec;
}

function renderBlock(b: Block, data: ReportData, updaters: Updater[]): HTMLElement | null {
  switch (b.type) {
    case 'table': return renderTable(b);
    case 'tabs': return renderTabs(b);
    case 'text': return el('div', { class: 'text' }, ...b.paragraphs.map((p) => el('p', {}, p)));
    case 'kv': {
      const dl = el('table', { class: 'kv' });
      for (const [k, v] of b.items) dl.appendChild(el('tr', {}, el('th', {}, k), el('td', {}, v)));
      return el('div', { class: 'kv-block' }, b.title ? el('h3', {}, b.title) : null, dl);
    }
    case 'json': {
      const d = el('details', { class: 'json' }, el('summary', {}, b.title), el('pre', {}, JSON.stringify(b.value, null, 2)));
      return d;
    }
    case 'heatmap': {
      const hm = renderHeatmap(b, data.runs);
      const wrap = el('div', { class: 'block' }, el('h3', {}, b.title), hm.root);
      updaters.push((tensor) => hm.update(tensor));
      return wrap;
    }
    case 'figure': return renderFigureBlock(b, updaters);
  }
}

function renderFigureBlock(b: FigureBlock, updaters: Updater[]): HTMLElement {
  const holder = el('div', { class: 'fig-holder', 'data-figure': b.id });
  const wrap = el('div', { class: 'block' }, el('h3', {}, b.title), holder);
  if (b.caption) wrap.appendChild(el('p', { class: 'caption' }, b.caption));
  let lastKey: string | null = null;
  const show = (key: string, what: string): void => {
    if (key === lastKey) return;
    lastKey = key;
    clear(holder);
    const f = b.figures[key];
    holder.dataset.key = key;
    if (f) holder.appendChild(renderFigure(f));
    else holder.appendChild(el('p', { class: 'note' }, `No data for ${what}.`));
  };
  if (b.bind === 'none') show('', '');
  else updaters.push((tensor, sel) => {
    if (b.bind === 'tensor') show(tensor, tensor || 'this selection');
    else if (b.bind === 'layer') show(sel.layer, sel.layer === '' ? 'tensors outside layers' : `layer ${sel.layer}`);
    else if (b.bind === 'kind') show(sel.kind, `module ${sel.kind}`);
    else show(sel.run, 'this tuned model');
  });
  return wrap;
}

function boot(): void {
  try {
    start();
  } catch (e) {
    const app = document.getElementById('app');
    if (app) app.textContent = `The report could not be shown: ${e instanceof Error ? e.message : String(e)}`;
    throw e;
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
