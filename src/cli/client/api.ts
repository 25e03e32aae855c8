import { ExitError } from "../command.ts";

/** An error answer of the API (or no answer at all), printed as `CODE: message`, exit 1. */
export class ApiError extends ExitError {
  constructor(
    readonly code: string,
    readonly apiMessage: string,
    readonly status = 0,
  ) {
    super(`${code}: ${apiMessage}`, 1);
  }
}

/** Where the bearer token comes from: fixed (flag, env) or minted anew before it runs out. */
export interface TokenSource {
  get(): Promise<string>;
}

export type Query = Record<string, string | number | boolean | undefined>;

/** How long an ordinary call may take; calls that are slow by design pass their own (or none). */
const TIMEOUT_MS = 60_000;

/** The REST API as the CLI sees it: JSON in and out, `{ code, message }` errors. */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly tokens: TokenSource,
  ) {}

  url(path: string, query: Query = {}): string {
    const url = new URL(this.baseUrl.replace(/\/+$/, "") + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    return url.toString();
  }

  /** `timeoutMs: null`: no time limit (the daemon answers when the work is done, e.g. a verify). */
  async request<T = any>(method: string, path: string, opts: { query?: Query; body?: unknown; timeoutMs?: number | null } = {}): Promise<T> {
    const headers: Record<string, string> = { authorization: `Bearer ${await this.tokens.get()}`, accept: "application/json" };
    if (opts.body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(this.url(path, opts.query), {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        redirect: "manual",
        signal: opts.timeoutMs === null ? undefined : AbortSignal.timeout(opts.timeoutMs ?? TIMEOUT_MS),
        // Bun's own idle timer (5 min by default) would still cut a silent answer: off as well.
        ...(opts.timeoutMs === null ? { timeout: false } : {}),
      });
    } catch (err) {
      throw new ApiError("UNAVAILABLE", `cannot reach the daemon at ${this.baseUrl}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let body: any = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: a proxy's error page, say; described below
    }
    if (res.ok) return body as T;
    if (body && typeof body.code === "string" && typeof body.message === "string") throw new ApiError(body.code, body.message, res.status);
    throw new ApiError("UNAVAILABLE", `${method} ${path} answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`, res.status);
  }

  get<T = any>(path: string, query?: Query): Promise<T> {
    return this.request<T>("GET", path, { query });
  }

  post<T = any>(path: string, body?: unknown, opts: { query?: Query; timeoutMs?: number | null } = {}): Promise<T> {
    return this.request<T>("POST", path, { body, ...opts });
  }
}
