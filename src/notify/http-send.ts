import type { LookupAddress } from "node:dns";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { OutboundError, type OutboundPolicy } from "../net/outbound-policy.ts";

/**
 * The one way notifications reach the network over HTTP: every channel's POST goes through
 * `httpPost`. Redirects are not followed (a 3xx is an answer, not a hop to an unchecked
 * host), the body read back is capped, and errors never quote the URL (a chat webhook URL
 * is a secret): they name the host only.
 */
export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The first bytes of the answer's body, for lastError. */
  snippet: string;
}

/** A failure before an HTTP answer arrived. `retry`: worth trying again later. */
export class SendError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
    this.name = "SendError";
  }
}

const SNIPPET_BYTES = 512;

export function checkHttpUrl(text: string): URL {
  const url = new URL(text);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new SendError(`only http(s) URLs are sent to, not ${url.protocol}`, false);
  return url;
}

const NETWORK_WORDS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  EPIPE: "connection closed",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "DNS lookup failed",
};

function describe(err: unknown, host: string): string {
  const code = (err as { code?: string })?.code;
  if (code && NETWORK_WORDS[code]) return `${host}: ${NETWORK_WORDS[code]} (${code})`;
  if (code?.startsWith("ERR_TLS") || code?.includes("CERT") || /certificate|ssl|tls/i.test(String((err as Error)?.message))) return `${host}: TLS handshake failed${code ? ` (${code})` : ""}`;
  return `${host}: network error${code ? ` (${code})` : ""}`;
}

export interface PostOptions {
  headers: Record<string, string>;
  body: string | Uint8Array;
  timeoutMs: number;
  signal?: AbortSignal;
  /** The daemon's outbound policy (network.denyCidrs / allowCidrs); null only in code that has none. */
  policy: OutboundPolicy | null;
}

export async function httpPost(target: string, opts: PostOptions): Promise<HttpAnswer> {
  let url: URL;
  try {
    url = checkHttpUrl(target);
  } catch (err) {
    throw err instanceof SendError ? err : new SendError("the URL is not valid", false);
  }
  const host = url.hostname;
  // ── Outbound policy ──────────────────────────────────────────────────────────────────
  // The host is resolved here and every address checked against network.denyCidrs /
  // allowCidrs; the socket then connects to those checked addresses (the `lookup` below),
  // never to a second, unchecked DNS answer.
  let addresses: LookupAddress[] | null = null;
  if (opts.policy) {
    try {
      addresses = await opts.policy.resolveAll(host);
    } catch (err) {
      if (err instanceof OutboundError) throw new SendError(err.message, err.kind === "unresolved");
      throw new SendError(describe(err, host), true);
    }
  }
  // ─────────────────────────────────────────────────────────────────────────────────────
  const lookup = addresses
    ? (_h: string, options: unknown, callback?: unknown) => {
        const cb = (typeof options === "function" ? options : callback) as (e: Error | null, a?: string | LookupAddress[], f?: number) => void;
        if (typeof options === "object" && options !== null && (options as { all?: boolean }).all) cb(null, addresses!);
        else cb(null, addresses![0]!.address, addresses![0]!.family);
      }
    : undefined;
  const body = typeof opts.body === "string" ? Buffer.from(opts.body) : opts.body;
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<HttpAnswer>((resolve, reject) => {
    const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(opts.timeoutMs)]) : AbortSignal.timeout(opts.timeoutMs);
    const req = send(url, { method: "POST", headers: { ...opts.headers, "content-length": String(body.byteLength) }, lookup: lookup as never, signal, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        if (size < SNIPPET_BYTES) chunks.push(chunk);
        size += chunk.length;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, snippet: Buffer.concat(chunks).subarray(0, SNIPPET_BYTES).toString("utf8") }));
      res.on("error", (err) => reject(new SendError(describe(err, host), true)));
    });
    req.on("error", (err) => {
      const timedOut = signal.aborted && !opts.signal?.aborted;
      reject(new SendError(timedOut ? `${host}: no answer within ${opts.timeoutMs / 1000} s` : describe(err, host), true));
    });
    req.end(body);
  });
}

/** Retry-After as milliseconds from now (delta-seconds or an HTTP date), or null. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return null;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
