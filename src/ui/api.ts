/**
 * The REST API from the page: the same routes as any client, with the bearer token held in
 * this module's memory only (never localStorage or a cookie: closing the tab ends it).
 */

export class Unauthenticated extends Error {}

export class ApiFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

let token: string | null = null;

export const setToken = (t: string | null) => {
  token = t;
};
export const hasToken = () => token !== null;

/** The daemon's root, relative to this page (/ui/ → /): works under a reverse proxy's sub-path too. */
const root = () => new URL("../", location.href);

async function answer<T>(res: Response): Promise<T> {
  const body = await res.json().catch(() => null);
  if (res.status === 401) throw new Unauthenticated(body?.message ?? "not signed in");
  if (!res.ok) throw new ApiFailure(body?.code ?? `HTTP_${res.status}`, body?.message ?? res.statusText);
  return body as T;
}

export async function get<T = any>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
  const url = new URL(path.replace(/^\//, ""), root());
  for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
  const res = await fetch(url, { headers: { authorization: `Bearer ${token ?? ""}`, accept: "application/json" }, cache: "no-store" });
  return answer<T>(res);
}

/**
 * The items of a list, page after page, up to `maxPages` pages of 200; `complete` is false when
 * there were more (the list is newest first: what is missing is the oldest).
 */
export async function collect<T = any>(path: string, query: Record<string, string | number | undefined> = {}, maxPages = 10): Promise<{ items: T[]; complete: boolean }> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < maxPages; i++) {
    const page = await get<{ items: T[]; cursors: { next: string | null } }>(path, { ...query, limit: 200, cursor });
    items.push(...page.items);
    if (!page.cursors.next) return { items, complete: true };
    cursor = page.cursors.next;
  }
  return { items, complete: false };
}

/** Every item of a list, up to `maxPages` pages of 200 (see collect). */
export async function all<T = any>(path: string, query: Record<string, string | number | undefined> = {}, maxPages = 10): Promise<T[]> {
  return (await collect<T>(path, query, maxPages)).items;
}

/** Exchanges a one-time login code (from `snapdb ui-link`) for a read-only token. */
export async function redeemCode(code: string): Promise<{ token: string; expiresAt: string }> {
  const res = await fetch(new URL("ui/login", root()), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify({ code }),
    cache: "no-store",
  });
  return answer(res);
}
