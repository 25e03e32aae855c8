import { createHash } from "node:crypto";
import { Elysia, t } from "elysia";
import { decodeJwt } from "jose";
import type { TokenVerifier } from "../auth.ts";
import { bearerToken } from "../auth.ts";
import type { HttpKit } from "../kit.ts";
import { AppError } from "../../lib/errors.ts";
import { isoOf } from "../../lib/clock.ts";
import type { LoginCodes } from "./login-codes.ts";
import { dashboardPage, UI_HEADERS } from "./page.ts";

/** The dashboard reads; a token that could change anything is not put in a browser. */
const DASHBOARD_SCOPE = "backup.read";
const hide = { hide: true } as const;

type Assets = { page: string; files: Record<string, { body: string; type: string }> };
let assets: Promise<Assets> | null = null;

/** Built (from source) or read (from the binary) on first use; the version in the URLs is their hash. */
function loadAssets(): Promise<Assets> {
  assets ??= import("./assets.ts").then(({ UI_SCRIPT, UI_STYLES }) => {
    const version = createHash("sha256").update(UI_SCRIPT).update(UI_STYLES).digest("hex").slice(0, 12);
    return {
      page: dashboardPage(version),
      files: {
        "app.js": { body: UI_SCRIPT, type: "text/javascript; charset=utf-8" },
        "app.css": { body: UI_STYLES, type: "text/css; charset=utf-8" },
      },
    };
  });
  // A build that failed (from source: bun build missing, say) is tried again on the next request.
  assets.catch(() => {
    assets = null;
  });
  return assets;
}

const noStore = { ...UI_HEADERS, "cache-control": "no-store" };

/**
 * The read-only dashboard at /ui/ (a client of the API like any other; hidden from the
 * OpenAPI document, which describes the API only) and its one-time login:
 * `snapdb ui-link` trades a read-only token for a code (POST /ui/login-codes), the page
 * trades the code back for the token once (POST /ui/login).
 */
export function uiRoutes(kit: HttpKit, verifyToken: TokenVerifier, codes: LoginCodes) {
  return new Elysia({ name: "snapdb-ui" })
    .use(kit.auth)
    .get(
      "/ui/",
      async ({ request, redirect }) => {
        // Elysia routes "/ui" and "/ui/" alike; the page's relative URLs need the slash.
        if (!new URL(request.url).pathname.endsWith("/")) return redirect("ui/", 301);
        const { page } = await loadAssets();
        return new Response(page, { headers: { ...noStore, "content-type": "text/html; charset=utf-8" } });
      },
      { detail: hide },
    )
    .get(
      "/ui/assets/:name",
      async ({ params }) => {
        const file = (await loadAssets()).files[params.name];
        if (!file) throw new AppError("NOT_FOUND", "no such asset");
        return new Response(file.body, { headers: { ...UI_HEADERS, "content-type": file.type, "cache-control": "no-cache" } });
      },
      { params: t.Object({ name: t.String({ maxLength: 64 }) }), detail: hide },
    )
    .post(
      "/ui/login-codes",
      ({ request, principal, set }) => {
        const extra = [...principal.scopes].filter((s) => s !== DASHBOARD_SCOPE);
        if (extra.length) {
          throw new AppError("FORBIDDEN", `a dashboard login takes a read-only token (scope ${DASHBOARD_SCOPE} only); this one also has ${extra.join(", ")}`);
        }
        const token = bearerToken(request.headers.get("authorization"));
        const exp = decodeJwt(token).exp!; // verified: exp is required
        const issued = codes.issue(token, principal.orgId, exp * 1000);
        if (!issued) throw new AppError("RATE_LIMITED", "too many dashboard login codes are waiting; try again in a few minutes");
        kit.logger.info("dashboard login code issued", { orgId: principal.orgId, sub: principal.sub });
        set.status = 201;
        Object.assign(set.headers, noStore);
        return { code: issued.code, expiresAt: isoOf(issued.expiresAt) };
      },
      { scope: DASHBOARD_SCOPE, detail: hide },
    )
    .post(
      "/ui/login",
      async ({ body, set }) => {
        const refused = () => new AppError("UNAUTHENTICATED", "this login code is invalid, expired or already used: run snapdb ui-link again");
        const token = codes.redeem(body.code);
        if (!token) throw refused();
        // The token may have run out (or its key been rotated) since the code was issued.
        const principal = await verifyToken(token).catch(() => null);
        if (!principal) throw refused();
        kit.logger.info("dashboard login", { orgId: principal.orgId, sub: principal.sub });
        Object.assign(set.headers, noStore);
        return { token, expiresAt: isoOf(decodeJwt(token).exp! * 1000) };
      },
      { body: t.Object({ code: t.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }), detail: hide },
    );
}
