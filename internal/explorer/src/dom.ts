// DOM helpers. Log content is untrusted: it only ever becomes a text node
// or an attribute value set through the DOM API, never HTML (no innerHTML,
// no insertAdjacentHTML anywhere in the explorer).

export type Child = Node | string | number | bigint | null | undefined | false | Child[];

type Attrs = Record<string, string | boolean | undefined | ((ev: Event) => void)>;

/** h creates an element with attributes (on* keys become listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

/** append adds children to el as nodes or text. */
export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** replace empties el and appends children. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** badge is a small label whose class gives its colour. */
export function badge(text: string, cls: string): HTMLElement {
  return h("span", { class: `badge ${cls}` }, text);
}

/** facts is a definition list of [term, value] pairs (skips empty values). */
export function facts(rows: [string, Child][]): HTMLElement {
  const dl = h("dl", { class: "facts" });
  for (const [k, v] of rows) {
    if (v === "" || v === undefined || v === null || v === false) continue;
    dl.append(h("dt", {}, k), h("dd", {}, v));
  }
  return dl;
}

/** code is inline monospace text. */
export function code(text: string): HTMLElement {
  return h("code", {}, text);
}

/** link is an anchor to a page of the explorer. */
export function link(href: string, ...children: Child[]): HTMLAnchorElement {
  return h("a", { href }, ...children);
}

/** clip shortens text to at most n code points, with an ellipsis; the full text is in the element's title. */
export function clip(text: string, n = 120): HTMLElement {
  const cps = Array.from(text);
  if (cps.length <= n) return code(text);
  return h("code", { title: text }, cps.slice(0, n).join("") + "…");
}
