import { Elysia } from "elysia";
import { AppError } from "../lib/errors.ts";

/** Deeper than any snapdb body needs; far below what overflows the stack of the validators. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text nests arrays/objects deeper than `max`: a scan of the text before it is
 * parsed, since the parser and the validators walk the value recursively. Brackets inside
 * strings don't count; malformed text is left for JSON.parse to refuse.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

const tooLarge = (limit: number) => new AppError("PAYLOAD_TOO_LARGE", `request body is larger than ${limit} bytes`);

/** Reads a body stream but stops at `limit` bytes, so an oversized body is never held whole. */
async function readLimited(request: Request, limit: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * JSON bodies only, up to `limit` bytes: a declared length over the limit is refused before
 * anything is read, a chunked body as soon as it crosses it.
 */
export function jsonBody(limit: number) {
  return new Elysia({ name: "snapdb-body" })
    .onRequest(({ request }) => {
      const declared = Number(request.headers.get("content-length") ?? 0);
      if (declared > limit) throw tooLarge(limit);
    })
    .onParse({ as: "global" }, async ({ request, contentType }) => {
      if (request.method === "GET" || request.method === "HEAD") return;
      const text = await readLimited(request, limit);
      if (text.trim() === "") return undefined;
      if (!/^application\/(.+\+)?json\b/i.test(contentType ?? "")) {
        throw new AppError("INVALID_INPUT", "request body must be application/json");
      }
      if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
        throw new AppError("INVALID_INPUT", `request body is nested deeper than ${MAX_JSON_DEPTH} levels`);
      }
      try {
        return JSON.parse(text);
      } catch {
        throw new AppError("INVALID_INPUT", "request body is not valid JSON");
      }
    });
}
