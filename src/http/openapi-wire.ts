import { LIMIT_PATTERN, PAGE_LIMIT } from "./pagination.ts";

type Json = Record<string, any>;

/**
 * Query values are strings on the wire, and some are validated as the strings they are
 * (`limit` as digits checked in code, so its errors name `/limit`; `cascade` and `enabled`
 * as "true" or "false"). The document shows the type they stand for instead: `limit` an
 * integer from 1 to 200, the flags booleans. A generated client then takes a number and a
 * boolean, and serializes them to the very strings the validators accept.
 */
export function documentQueryTypes(paths: Json): void {
  for (const item of Object.values(paths) as Json[]) {
    for (const op of Object.values(item) as Json[]) {
      for (const param of (op.parameters ?? []) as Json[]) {
        if (param.in !== "query" || !param.schema) continue;
        const { description } = param.schema as { description?: string };
        if (param.name === "limit" && param.schema.pattern === LIMIT_PATTERN) {
          param.schema = { type: "integer", ...PAGE_LIMIT, ...(description ? { description } : {}) };
        } else if (isBooleanString(param.schema)) {
          param.schema = { type: "boolean", ...(description ? { description } : {}) };
        }
      }
    }
  }
}

function isBooleanString(schema: Json): boolean {
  const values = schema.enum ?? schema.anyOf?.map((s: Json) => s.const);
  return Array.isArray(values) && values.length === 2 && values.includes("true") && values.includes("false");
}
