import { Elysia } from "elysia";
import { toOpenAPISchema } from "@elysiajs/openapi";
import { SWAGGER_ASSETS } from "./swagger/assets.ts";
import { SWAGGER_INIT, SWAGGER_PAGE } from "./swagger/page.ts";
import { REQUIRED_SCOPE, SCOPES } from "./auth.ts";
import { TAG_ORDER } from "./openapi-tags.ts";
import { collapseIntegerUnions } from "./openapi-integers.ts";
import { OPERATION_IDS } from "./operation-ids.ts";

type Json = Record<string, any>;

const ERROR_RESPONSES: Record<string, string> = {
  "400": "Invalid input (`INVALID_INPUT`), with `details[].path`",
  "401": "Missing or invalid token (`UNAUTHENTICATED`)",
  "403": "The token lacks the scope (`FORBIDDEN`)",
  "404": "Not found, or another organisation's (`NOT_FOUND`)",
  "413": "Body over the size limit (`PAYLOAD_TOO_LARGE`)",
  "500": "Unexpected error (`INTERNAL`); the cause is logged with the request id",
};

const errorRef = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };

/**
 * A schema with `$id: "#/components/schemas/X"` is inlined by the generator at every use,
 * and the same `$id` twice makes the document invalid: move it to `components.schemas.X`
 * once and point every use at it with `$ref`.
 */
function hoistComponents(spec: Json): void {
  const schemas: Json = {};
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (!node || typeof node !== "object") return node;
    const obj = node as Json;
    const match = typeof obj.$id === "string" ? /^#\/components\/schemas\/([\w.-]+)$/.exec(obj.$id) : null;
    const out: Json = {};
    for (const [k, v] of Object.entries(obj)) if (k !== "$id" || !match) out[k] = visit(v);
    if (!match) return out;
    schemas[match[1]!] ??= out;
    return { $ref: obj.$id };
  };
  spec.paths = visit(spec.paths ?? {});
  spec.components ??= {};
  spec.components.schemas = { ...schemas, ...spec.components.schemas };
}

/** Adds what Elysia cannot infer: security per route, its scope, and the error answers. */
function finishSpec(spec: Json, version: string): Json {
  hoistComponents(spec);
  spec.paths = collapseIntegerUnions(spec.paths);
  spec.components.schemas = collapseIntegerUnions(spec.components.schemas);
  for (const [path, item] of Object.entries(spec.paths ?? {}) as [string, Json][]) {
    for (const [method, op] of Object.entries(item) as [string, Json][]) {
      // Ours, not the generator's (`getData-sourcesByIdBackup-jobs`); a route without one keeps
      // the generated id and fails the operation-ids test.
      op.operationId = OPERATION_IDS[`${method.toUpperCase()} ${path}`] ?? op.operationId;
      const scope = op[REQUIRED_SCOPE] as string | undefined;
      op.responses ??= {};
      // @elysiajs/openapi renders `t.Void()` (a 204) as `content: { type: "void" }`, which is
      // not a media-type map: a body-less answer has no `content` at all.
      for (const r of Object.values(op.responses) as Json[]) if (r?.content?.type === "void") delete r.content;
      for (const [status, description] of Object.entries(ERROR_RESPONSES)) {
        if (!scope && (status === "401" || status === "403")) continue;
        if (!scope && status === "404" && !path.includes("{")) continue;
        op.responses[status] ??= { description, content: errorRef };
        op.responses[status].content ??= errorRef;
      }
      if (scope) {
        op.security = [{ bearer: [] }];
        op.description = `${op.description ? `${op.description}\n\n` : ""}Requires scope \`${scope}\`.`;
      } else {
        op.security = [];
      }
    }
  }
  spec.info = {
    title: "snapdb API",
    version,
    description:
      "Self-hosted database backups. Authenticate with `Authorization: Bearer <JWT>`; " +
      `scopes: ${SCOPES.map((s) => `\`${s}\``).join(", ")}. Errors are \`{ code, message, details? }\`; ` +
      "lists are newest first with opaque `cursors.next`.",
    license: { name: "MIT", identifier: "MIT" },
  };
  spec.tags = TAG_ORDER;
  spec.components ??= {};
  spec.components.securitySchemes = {
    bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
  };
  spec.components.schemas ??= {};
  spec.components.schemas.Error = {
    type: "object",
    required: ["code", "message"],
    properties: {
      code: { type: "string", example: "INVALID_INPUT" },
      message: { type: "string" },
      details: {
        type: "array",
        items: { type: "object", required: ["path", "message"], properties: { path: { type: "string" }, message: { type: "string" } } },
      },
    },
  };
  return spec;
}

/**
 * The generator describes a request body only for parsers it knows by name; our one global
 * parser (src/http/body.ts, a function) made it emit `requestBody.content: {}`, so the
 * served document had no body schema at all. Bodies are JSON only: show it the routes with
 * the named "json" parser instead (the app itself is untouched).
 */
function jsonBodiesView(app: Elysia<any, any, any, any, any, any, any>) {
  const root = app as any; // the two getters are `protected`; the generator calls them too
  return {
    getGlobalDefinitions: () => root.getGlobalDefinitions?.(),
    getGlobalRoutes: () =>
      root.getGlobalRoutes().map((route: any) =>
        route.hooks?.body ? { ...route, hooks: { ...route.hooks, parse: [{ fn: "json" }] } } : route,
      ),
  } as unknown as Elysia<any, any, any, any, any, any, any>;
}

/**
 * `/swagger/json` (OpenAPI 3 of every route of `root`) and the offline UI at `/swagger/`.
 * The document's one server is `publicUrl` when the operator set it, else the origin the
 * request came to, so "Try it out" and generated clients call the daemon they read it from.
 */
export function openapiRoutes(getRoot: () => Elysia<any, any, any, any, any, any, any>, version: string, publicUrl = "") {
  let cached: { routes: number; spec: Json } | null = null;
  return new Elysia({ name: "snapdb-openapi" })
    .get(
      "/swagger/json",
      ({ request }) => {
        const root = getRoot();
        if (!cached || cached.routes !== root.routes.length) {
          const generated = toOpenAPISchema(jsonBodiesView(root), { paths: [/^\/swagger/, "/downloads/*"] }, undefined, undefined, "3.1.0");
          cached = { routes: root.routes.length, spec: finishSpec({ openapi: "3.1.0", ...generated }, version) };
        }
        const url = publicUrl.replace(/\/+$/, "") || new URL(request.url).origin;
        return { ...cached.spec, servers: [{ url, description: "this snapdb daemon" }] };
      },
      { detail: { hide: true } },
    )
    // Elysia routes "/swagger" and "/swagger/" alike; the page must be served under the
    // slash for its relative URLs ("json", "assets/…") to resolve, so one handler tells them apart.
    .get(
      "/swagger/",
      ({ request, redirect }) =>
        new URL(request.url).pathname.endsWith("/")
          ? new Response(SWAGGER_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } })
          : redirect("swagger/", 301),
      { detail: { hide: true } },
    )
    .get(
      "/swagger/init.js",
      () => new Response(SWAGGER_INIT, { headers: { "content-type": "text/javascript; charset=utf-8" } }),
      { detail: { hide: true } },
    )
    .get(
      "/swagger/assets/:name",
      ({ params, set }) => {
        const asset = SWAGGER_ASSETS[params.name];
        if (!asset) {
          set.status = 404;
          return { code: "NOT_FOUND", message: "no such asset" };
        }
        return new Response(Bun.file(asset.path), {
          headers: { "content-type": asset.type, "cache-control": "public, max-age=86400" },
        });
      },
      { detail: { hide: true } },
    );
}
