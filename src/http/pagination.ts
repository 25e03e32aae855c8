import { t } from "elysia";
import { AppError, invalidInput } from "../lib/errors.ts";
import type { PageRequest } from "../lib/page.ts";
import { SignedJson } from "../lib/signed-json.ts";

/** Page sizes: the document shows `limit` as this integer (src/http/openapi-wire.ts). */
export const PAGE_LIMIT = { minimum: 1, maximum: 200, default: 50 } as const;
export const LIMIT_PATTERN = "^[0-9]{1,4}$";

/** `cursor` and `limit` of every list endpoint. */
export const PageQuery = {
  cursor: t.Optional(t.String({ maxLength: 512, description: "Opaque cursor from `cursors.next` of the previous page." })),
  // A string checked in code: Elysia's coercion of numeric query values loses the field's
  // name in its errors, and a client deserves `/limit` in `details[].path`.
  limit: t.Optional(t.String({ pattern: LIMIT_PATTERN, description: "Page size, an integer from 1 to 200 (default 50)." })),
};

/** `{ items, cursors: { next } }` for an item schema. */
export const pageOf = <T extends Parameters<typeof t.Array>[0]>(item: T) => t.Object({ items: t.Array(item), cursors: t.Object({ next: t.Union([t.String(), t.Null()]) }) });

const badCursor = () => new AppError("INVALID_INPUT", "cursor is malformed or belongs to another list", [{ path: "/cursor", message: "malformed or foreign cursor" }]);

/**
 * Opaque keyset cursors: the last id of a page, bound to the list and org it came from and
 * signed, so a tampered or foreign cursor is refused instead of silently paging elsewhere.
 */
export class Cursors {
  /** A 16-byte MAC keeps cursors short; a forgery still needs 2^128 tries. */
  private readonly codec: SignedJson;

  constructor(key: Uint8Array) {
    this.codec = new SignedJson(key, { macBytes: 16 });
  }

  encode(list: string, orgId: string, lastId: string): string {
    return this.codec.sign({ l: list, o: orgId, k: lastId });
  }

  decode(list: string, orgId: string, cursor: string): string {
    // A payload that is not the object we sign (e.g. an older format) is a malformed cursor
    // (400), never a TypeError (500).
    const parsed = this.codec.verify(cursor) as { l?: unknown; o?: unknown; k?: unknown } | null | undefined;
    if (!parsed || typeof parsed !== "object" || parsed.l !== list || parsed.o !== orgId || typeof parsed.k !== "string") throw badCursor();
    return parsed.k;
  }

  /** The service-side page request for a route's query. */
  request(list: string, orgId: string, query: { cursor?: string; limit?: string }): PageRequest {
    const limit = query.limit === undefined ? PAGE_LIMIT.default : Number(query.limit);
    if (!Number.isInteger(limit) || limit < PAGE_LIMIT.minimum || limit > PAGE_LIMIT.maximum) {
      throw invalidInput("/limit", "limit must be an integer from 1 to 200");
    }
    return { limit, beforeId: query.cursor ? this.decode(list, orgId, query.cursor) : null };
  }

  /** The answer for a page the service fetched with `limit + 1` rows. */
  answer<T extends { id: string }>(list: string, orgId: string, page: { items: T[]; hasMore: boolean }) {
    const last = page.items.at(-1);
    return { items: page.items, cursors: { next: page.hasMore && last ? this.encode(list, orgId, last.id) : null } };
  }
}
