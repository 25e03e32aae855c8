/** Small helpers over plain nested objects addressed by dotted paths. */
export type Tree = Record<string, unknown>;

/**
 * Keys that reach an object's prototype when assigned: a config file may spell them (TOML
 * allows any key), but they are never merged, set or read; the loader reports them as unknown.
 */
const UNSAFE_KEYS = new Set(["__proto__", "constructor", "prototype"]);
export const isUnsafeKey = (key: string) => UNSAFE_KEYS.has(key);

export const isPlainObject = (v: unknown): v is Tree => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);

const own = (tree: Tree, key: string) => (Object.hasOwn(tree, key) ? tree[key] : undefined);

export function setPath(tree: Tree, path: string, value: unknown): void {
  const keys = path.split(".");
  if (keys.some(isUnsafeKey)) throw new Error(`refusing to set ${path}: unsafe key`);
  let node = tree;
  for (const key of keys.slice(0, -1)) {
    if (!isPlainObject(own(node, key))) node[key] = {};
    node = node[key] as Tree;
  }
  node[keys.at(-1)!] = value;
}

export function getPath(tree: Tree, path: string): unknown {
  let node: unknown = tree;
  for (const key of path.split(".")) {
    if (!isPlainObject(node) || isUnsafeKey(key)) return undefined;
    node = own(node, key);
  }
  return node;
}

/** Leaves of a tree as dotted paths (arrays are leaves). */
export function leafPaths(tree: Tree, prefix = ""): string[] {
  return Object.entries(tree).flatMap(([k, v]) => (isPlainObject(v) ? leafPaths(v, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

/** Dotted paths of the unsafe keys anywhere in a tree. */
export function unsafeKeyPaths(tree: Tree, prefix = ""): string[] {
  return Object.entries(tree).flatMap(([k, v]) => (isUnsafeKey(k) ? [`${prefix}${k}`] : isPlainObject(v) ? unsafeKeyPaths(v, `${prefix}${k}.`) : []));
}

/** `over` wins; objects merge key by key, everything else is replaced; unsafe keys are dropped. */
export function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (isUnsafeKey(k)) continue;
    const current = own(out, k);
    out[k] = isPlainObject(v) && isPlainObject(current) ? deepMerge(current, v) : v;
  }
  return out;
}
