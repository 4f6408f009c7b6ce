/**
 * Sortable, filterable tables. Sorting and filtering run over all rows; only the first
 * ROW_LIMIT matching rows are put in the DOM until the user asks for all (a 1.5B model
 * with five runs has ~1000 tensor rows).
 */
import type { Cell, TableBlock, TabsBlock } from '../html/model.js';
import { clear, el } from './dom.js';
import { fmtCell } from './format.js';

const ROW_LIMIT = 200;

function compareCells(a: Cell, b: Cell): number {
  if (a === b) return 0;
  if (a === null) return 1; // nulls last in both directions is handled by caller
  if (b === null) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a).localeCompare(String(b), 'en', { numeric: true });
}

export function renderTable(t: TableBlock): HTMLElement {
  const root = el('div', { class: 'table-block', id: `tbl-${t.id}`, 'data-table': t.id });
  if (t.title) root.appendChild(el('h3', {}, t.title));
  if (t.caption) root.appendChild(el('p', { class: 'caption' }, t.caption));

  let sortCol = -1;
  let sortDir = 1;
  let showAll = false;
  const filter = el('input', { type: 'search', placeholder: 'filter rows (text; several words = all must match)', class: 'filter', 'aria-label': `filter ${t.title}` });
  const controls = el('div', { class: 'table-controls' }, filter);
  const facetSelects: { col: number; sel: HTMLSelectElement }[] = [];
  for (const key of t.facets ?? []) {
    const col = t.columns.findIndex((c) => c.key === key);
    if (col < 0) continue;
    const values = [...new Set(t.rows.map((r) => r[col] ?? null))].sort(compareCells);
    if (values.length < 2) continue;
    const sel = el('select', { 'aria-label': t.columns[col]!.label, 'data-facet': key }, el('option', { value: '' }, `all ${t.columns[col]!.label}`));
    values.forEach((v, i) => sel.appendChild(el('option', { value: String(i) }, v === null ? '—' : String(v))));
    (sel as HTMLSelectElement & { _values?: Cell[] })._values = values;
    controls.appendChild(sel);
    facetSelects.push({ col, sel });
  }
  const count = el('span', { class: 'count' });
  controls.appendChild(count);
  // Small tables (claims, Table 1) stay sortable but need no filter box.
  if (t.rows.length > 12 || facetSelects.length > 0) root.appendChild(controls);

  const table = el('table', { class: 'data' });
  const thead = el('thead');
  const htr = el('tr');
  t.columns.forEach((c, i) => {
    const th = el('th', { class: c.type === 'text' ? 'txt' : 'num', title: c.help ?? 'click to sort', tabindex: '0' }, c.label);
    const onSort = (): void => {
      if (sortCol === i) sortDir = -sortDir; else { sortCol = i; sortDir = c.type === 'text' ? 1 : -1; }
      draw();
    };
    th.addEventListener('click', onSort);
    th.addEventListener('keydown', (e) => { if (e.key === 'Enter') onSort(); });
    htr.appendChild(th);
  });
  thead.appendChild(htr);
  table.appendChild(thead);
  const tbody = el('tbody');
  table.appendChild(tbody);
  const wrap = el('div', { class: 'table-wrap' }, table);
  root.appendChild(wrap);
  const more = el('button', { class: 'more', type: 'button' });
  more.addEventListener('click', () => { showAll = true; draw(); });
  root.appendChild(more);

  // Precomputed lower-case text per row for filtering.
  const rowText = t.rows.map((r) => r.map((c, i) => fmtCell(c, t.columns[i]!.type, t.columns[i]!.digits)).join(' ').toLowerCase());

  function draw(): void {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let idx = t.rows.map((_, i) => i).filter((i) => words.every((w) => rowText[i]!.includes(w)));
    for (const { col, sel } of facetSelects) {
      if (sel.value === '') continue;
      const want = (sel as HTMLSelectElement & { _values?: Cell[] })._values![Number(sel.value)];
      idx = idx.filter((i) => (t.rows[i]![col] ?? null) === want);
    }
    if (sortCol >= 0) {
      const c = sortCol;
      idx.sort((a, b) => {
        const va = t.rows[a]![c] ?? null;
        const vb = t.rows[b]![c] ?? null;
        if (va === null || vb === null) return va === vb ? a - b : va === null ? 1 : -1;
        return sortDir * compareCells(va, vb) || a - b;
      });
    }
    htr.querySelectorAll('th').forEach((th, i) => {
      th.classList.toggle('sorted', i === sortCol);
      th.setAttribute('aria-sort', i === sortCol ? (sortDir > 0 ? 'ascending' : 'descending') : 'none');
      th.dataset.dir = i === sortCol ? (sortDir > 0 ? '▲' : '▼') : '';
    });
    clear(tbody);
    const shown = showAll ? idx : idx.slice(0, ROW_LIMIT);
    const frag = document.createDocumentFragment();
    for (const ri of shown) {
      const r = t.rows[ri]!;
      const tr = el('tr');
      r.forEach((c, i) => {
        const col = t.columns[i]!;
        tr.appendChild(el('td', { class: col.type === 'text' ? 'txt' : 'num' }, fmtCell(c, col.type, col.digits)));
      });
      frag.appendChild(tr);
    }
    tbody.appendChild(frag);
    count.textContent = `${idx.length} of ${t.rows.length} rows`;
    more.style.display = shown.length < idx.length ? '' : 'none';
    more.textContent = `show all ${idx.length} rows`;
  }
  filter.addEventListener('input', () => draw());
  for (const { sel } of facetSelects) sel.addEventListener('change', () => draw());
  draw();
  return root;
}

export function renderTabs(b: TabsBlock): HTMLElement {
  const root = el('div', { class: 'tabs-block', id: `tabs-${b.id}` });
  if (b.title) root.appendChild(el('h3', {}, b.title));
  const bar = el('div', { class: 'tabbar', role: 'tablist' });
  const body = el('div', { class: 'tabbody' });
  root.appendChild(bar);
  root.appendChild(body);
  const rendered = new Map<number, HTMLElement>();
  const buttons: HTMLButtonElement[] = [];
  const select = (i: number): void => {
    buttons.forEach((btn, j) => btn.setAttribute('aria-selected', String(i === j)));
    clear(body);
    let node = rendered.get(i);
    if (!node) { node = renderTable(b.tabs[i]!.block); rendered.set(i, node); }
    body.appendChild(node);
  };
  b.tabs.forEach((tab, i) => {
    const btn = el('button', { type: 'button', role: 'tab', 'data-tab': tab.label }, tab.label);
    btn.addEventListener('click', () => select(i));
    buttons.push(btn);
    bar.appendChild(btn);
  });
  if (b.tabs.length > 0) select(0);
  return root;
}
