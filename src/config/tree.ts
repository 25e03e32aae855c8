/** Small helpers over plain nested objects addressed by dotted paths. */
export type Tree = Record<string, unknown>;

export const isPlainObject = (v: unknown): v is Tree =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);

export function setPath(tree: Tree, path: string, value: unknown): void {
  const keys = path.split(".");
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys.at(-1)!] = value;
}

export function getPath(tree: Tree, path: string): unknown {
  let node: unknown = tree;
  for (const key of path.split(".")) {
    if (!isPlainObject(node)) return undefined;
    node = node[key];
  }
  return node;
}

/** Leaves of a tree as dotted paths (arrays are leaves). */
export function leafPaths(tree: Tree, prefix = ""): string[] {
  return Object.entries(tree).flatMap(([k, v]) =>
    isPlainObject(v) ? leafPaths(v, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

/** `over` wins; objects merge key by key, everything else is replaced. */
export function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlainObject(v) && isPlainObject(out[k]) ? deepMerge(out[k] as Tree, v) : v;
  }
  return out;
}
