type Json = Record<string, any>;

/**
 * Elysia documents `t.Integer()` as `anyOf: [{ type: "string", format: "integer" }, { type:
 * "integer" }]`, because it also coerces numeric strings (query parameters). On the wire the
 * JSON answers carry numbers, and a generated client would type every count `string |
 * number`. This rewrites each such union to `type: "integer"`, keeping the node's own
 * constraints and description (the string branch's `default: 0` was never a real default).
 */
export function collapseIntegerUnions(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(collapseIntegerUnions);
  if (!node || typeof node !== "object") return node;
  const obj = node as Json;
  const out: Json = {};
  for (const [k, v] of Object.entries(obj)) out[k] = collapseIntegerUnions(v);
  const union = out.anyOf;
  if (Array.isArray(union) && union.length === 2 && isCoercedIntegerString(union[0]) && union[1]?.type === "integer") {
    const { anyOf: _a, ...own } = out;
    return { ...union[1], ...own, type: "integer" };
  }
  return out;
}

const isCoercedIntegerString = (s: Json | undefined) => s?.type === "string" && s.format === "integer";
