/** A tiny element builder: text only goes in as text nodes, never as HTML. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | undefined> = {}, ...children: (Node | string | null | undefined)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

export const byId = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

/** `<time>` with the exact moment in its datetime (and tooltip) and a coarse text. */
export function time(ms: number, text: string): HTMLTimeElement {
  const iso = new Date(ms).toISOString();
  return h("time", { datetime: iso, title: new Date(ms).toLocaleString() }, text);
}
