import { Elysia } from "elysia";
import { AppError } from "../lib/errors.ts";

/** The JSON pointer of the first string (or key) in `value` holding U+0000, or null. */
export function nulAt(value: unknown, at = ""): string | null {
  if (typeof value === "string") return value.includes("\0") ? at || "/" : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nulAt(value[i], `${at}/${i}`);
      if (found !== null) return found;
    }
    return null;
  }
  if (value && typeof value === "object") {
    for (const [key, v] of Object.entries(value)) {
      const path = `${at}/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`;
      if (key.includes("\0")) return path;
      const found = nulAt(v, path);
      if (found !== null) return found;
    }
  }
  return null;
}

/**
 * No text the API takes holds U+0000. A PostgreSQL store cannot keep one in a text column (the
 * statement fails), and no name, id or setting needs one; refusing it before any handler runs
 * gives the same answer on both stores: a path parameter with one names nothing (404), a query
 * or body field with one is bad input (400 naming the field). Runs after authentication and
 * schema validation, as the handler would.
 */
export function refuseNul() {
  return new Elysia({ name: "snapdb-no-nul" }).onBeforeHandle({ as: "global" }, ({ params, query, body }) => {
    if (nulAt(params) !== null) throw new AppError("NOT_FOUND", "not found");
    const inQuery = nulAt(query);
    if (inQuery !== null) throw new AppError("INVALID_INPUT", "a query parameter contains a NUL character", [{ path: inQuery, message: "must not contain NUL (U+0000)" }]);
    const inBody = nulAt(body);
    if (inBody !== null) throw new AppError("INVALID_INPUT", "the request body contains a NUL character", [{ path: inBody, message: "must not contain NUL (U+0000)" }]);
  });
}
