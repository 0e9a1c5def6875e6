/**
 * DOM construction for the report pages. Text always goes in through text nodes
 * (textContent), never through HTML parsing, and event-handler attributes cannot be set,
 * so nothing taken from a circuit file can become markup or code.
 */
export type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  text?: string;
  title?: string;
  attrs?: Record<string, string | number | boolean>;
}

function setAttrs(node: Element, attrs: Record<string, string | number | boolean>): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (/^on/i.test(k) || k.toLowerCase() === 'srcdoc') throw new Error(`refusing to set attribute '${k}'`);
    if (v === false) continue;
    node.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(node: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (props.class) node.className = props.class;
  if (props.text !== undefined) node.textContent = props.text;
  if (props.title !== undefined) node.title = props.title;
  if (props.attrs) setAttrs(node, props.attrs);
  append(node, children);
  return node;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number | boolean> = {}, ...children: Child[]): SVGElementTagNameMap[K] {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/** An SVG <title> (the native tooltip) holding `text` as text. */
export function svgTitle(text: string): SVGTitleElement {
  const t = document.createElementNS(SVG_NS, 'title');
  t.textContent = text;
  return t;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T | null {
  return document.getElementById(id) as T | null;
}

export function clear(node: Node): void {
  while (node.firstChild) node.removeChild(node.firstChild);
}
