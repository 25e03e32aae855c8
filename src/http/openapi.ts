import { Elysia } from "elysia";
import { toOpenAPISchema } from "@elysiajs/openapi";
import { OptionalKind } from "@sinclair/typebox";
import { SWAGGER_ASSETS } from "./swagger/assets.ts";
import { SWAGGER_INIT, SWAGGER_PAGE } from "./swagger/page.ts";
import { REQUIRED_SCOPE, SCOPES } from "./auth.ts";
import { TAG_ORDER } from "./openapi-tags.ts";
import { collapseIntegerUnions } from "./openapi-integers.ts";
import { OPERATION_IDS } from "./operation-ids.ts";
import { declareResponses, RESPONSE_HEADERS } from "./openapi-responses.ts";
import { documentQueryTypes } from "./openapi-wire.ts";
import { ERROR_CODES, httpStatusOf } from "../lib/errors.ts";

type Json = Record<string, any>;

/**
 * A schema with `$id: "#/components/schemas/X"` is inlined by the generator at every use,
 * and the same `$id` twice makes the document invalid: move it to `components.schemas.X`
 * once and point every use at it with `$ref`. The generator folds `t.Union([X, t.Null()])`
 * into X itself (`type: ["object", "null"]`): the component stays X, never null, and only
 * that use says "or null".
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
    const nullable = Array.isArray(out.type) && out.type.includes("null");
    if (nullable) {
      const types = (out.type as string[]).filter((t) => t !== "null");
      out.type = types.length === 1 ? types[0] : types;
    }
    schemas[match[1]!] ??= out;
    return nullable ? { anyOf: [{ $ref: obj.$id }, { type: "null" }] } : { $ref: obj.$id };
  };
  spec.paths = visit(spec.paths ?? {});
  spec.components ??= {};
  spec.components.schemas = { ...schemas, ...spec.components.schemas };
}

/** Adds what Elysia cannot infer: ids, security per route, its scope, every status's answer, wire types. */
function finishSpec(spec: Json, version: string, optionalBodies: Set<string>): Json {
  hoistComponents(spec);
  spec.paths = collapseIntegerUnions(spec.paths);
  spec.components.schemas = collapseIntegerUnions(spec.components.schemas);
  documentQueryTypes(spec.paths);
  for (const [path, item] of Object.entries(spec.paths ?? {}) as [string, Json][]) {
    for (const [method, op] of Object.entries(item) as [string, Json][]) {
      const key = `${method.toUpperCase()} ${path}`;
      // Ours, not the generator's (`getData-sourcesByIdBackup-jobs`); a route without one keeps
      // the generated id and fails the operation-ids test.
      op.operationId = OPERATION_IDS[key] ?? op.operationId;
      const scope = op[REQUIRED_SCOPE] as string | undefined;
      op.responses ??= {};
      // @elysiajs/openapi renders `t.Void()` (a 204) as `content: { type: "void" }`, which is
      // not a media-type map: a body-less answer has no `content` at all.
      for (const r of Object.values(op.responses) as Json[]) if (r?.content?.type === "void") delete r.content;
      // The generator marks every body required, `t.Optional(...)` ones too.
      if (op.requestBody && optionalBodies.has(key)) op.requestBody.required = false;
      declareResponses(key, op, scope !== undefined, path);
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
      "lists are newest first with opaque `cursors.next`. Every answer carries `x-request-id`.",
    license: { name: "MIT", identifier: "MIT" },
  };
  spec.tags = TAG_ORDER;
  spec.components ??= {};
  spec.components.securitySchemes = {
    bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
  };
  spec.components.headers = RESPONSE_HEADERS;
  spec.components.schemas ??= {};
  spec.components.schemas.Error = {
    type: "object",
    required: ["code", "message"],
    properties: {
      code: {
        type: "string",
        enum: [...ERROR_CODES],
        description: `One per HTTP status: ${ERROR_CODES.map((c) => `${c} ${httpStatusOf[c]}`).join(", ")}.`,
      },
      message: { type: "string" },
      details: {
        type: "array",
        items: { type: "object", required: ["path", "message"], properties: { path: { type: "string" }, message: { type: "string" } } },
      },
    },
  };
  return spec;
}

/** Elysia's `/a/:id/b` as the document writes it: `/a/{id}/b`. */
const templateOf = (path: string) => path.replace(/:(\w+)/g, "{$1}");

/**
 * The generator describes a request body only for parsers it knows by name; our one global
 * parser (src/http/body.ts, a function) made it emit `requestBody.content: {}`, so the
 * served document had no body schema at all. Bodies are JSON only: show it the routes with
 * the named "json" parser instead (the app itself is untouched). It also notes which routes
 * take an optional body, which the generator loses.
 */
function jsonBodiesView(app: Elysia<any, any, any, any, any, any, any>, optionalBodies: Set<string>) {
  const root = app as any; // the two getters are `protected`; the generator calls them too
  return {
    getGlobalDefinitions: () => root.getGlobalDefinitions?.(),
    getGlobalRoutes: () =>
      root.getGlobalRoutes().map((route: any) => {
        if (!route.hooks?.body) return route;
        if (route.hooks.body[OptionalKind] === "Optional") optionalBodies.add(`${route.method} ${templateOf(route.path)}`);
        return { ...route, hooks: { ...route.hooks, parse: [{ fn: "json" }] } };
      }),
  } as unknown as Elysia<any, any, any, any, any, any, any>;
}

/**
 * `/swagger/json` (OpenAPI 3 of every route of `root`) and the offline UI at `/swagger/`.
 * The document's one server is `publicUrl` when the operator set it, else the origin the
 * request came to, so "Try it out" and generated clients call the daemon they read it from.
 */
export function openapiRoutes(getRoot: () => Elysia<any, any, any, any, any, any, any>, version: string, publicUrl = "") {
  let cached: { routes: number; spec: Json } | null = null;
  return (
    new Elysia({ name: "snapdb-openapi" })
      .get(
        "/swagger/json",
        ({ request }) => {
          const root = getRoot();
          if (!cached || cached.routes !== root.routes.length) {
            const optionalBodies = new Set<string>();
            const generated = toOpenAPISchema(jsonBodiesView(root, optionalBodies), { paths: [/^\/swagger/, "/downloads/*"] }, undefined, undefined, "3.1.0");
            cached = { routes: root.routes.length, spec: finishSpec({ openapi: "3.1.0", ...generated }, version, optionalBodies) };
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
        ({ request, redirect }) => (new URL(request.url).pathname.endsWith("/") ? new Response(SWAGGER_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }) : redirect("swagger/", 301)),
        { detail: { hide: true } },
      )
      .get("/swagger/init.js", () => new Response(SWAGGER_INIT, { headers: { "content-type": "text/javascript; charset=utf-8" } }), { detail: { hide: true } })
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
      )
  );
}
