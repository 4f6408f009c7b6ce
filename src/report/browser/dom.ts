/** Tiny DOM helpers: every text goes through textContent (the data is never parsed as HTML). */

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function clear(node: Node): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/** One floating tooltip shared by all figures. */
let tip: HTMLDivElement | null = null;
export function showTip(x: number, y: number, lines: string[]): void {
  if (!tip) {
    tip = el('div', { class: 'tip', role: 'tooltip' });
    document.body.appendChild(tip);
  }
  clear(tip);
  for (const l of lines) tip.appendChild(el('div', {}, l));
  tip.style.display = 'block';
  const w = tip.offsetWidth;
  const left = x + 14 + w > window.innerWidth ? x - 14 - w : x + 14;
  tip.style.left = `${Math.max(0, left + window.scrollX)}px`;
  tip.style.top = `${y + 12 + window.scrollY}px`;
}
export function hideTip(): void {
  if (tip) tip.style.display = 'none';
}
