import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { AUDIT_ACTIONS, AUDIT_TARGET_TYPES } from "../../src/audit/actions.ts";
import { REPO_ROOT } from "../helpers/daemon.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * The served document passes `redocly lint` with its recommended rules: no error and no
 * warning. The daemon is given a public URL, as an operator behind a proxy would, so the
 * document's server is that URL.
 */
let h: Harness;
const dir = tempDir("snapdb-lint");
beforeAll(async () => {
  h = await createHarness({ SNAPDB_PUBLIC_URL: "https://backups.acme.internal/" });
});
afterAll(() => {
  h.close();
  dir.cleanup();
});

test("redocly lint (recommended rules) finds nothing", async () => {
  const spec = (await h.call("GET", "/swagger/json")).body;
  expect(spec.servers).toEqual([{ url: "https://backups.acme.internal", description: "this snapdb daemon" }]);
  expect(spec.info.license).toEqual({ name: "MIT", identifier: "MIT" });
  const file = join(dir.path, "openapi.json");
  await Bun.write(file, JSON.stringify(spec));
  const lint = Bun.spawn([join(REPO_ROOT, "node_modules/.bin/redocly"), "lint", file, "--extends=recommended", "--format=json"], {
    cwd: dir.path,
    env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [out, err] = await Promise.all([new Response(lint.stdout).text(), new Response(lint.stderr).text()]);
  const code = await lint.exited;
  const report = JSON.parse(out.slice(out.indexOf("{"))) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; message: string }[] };
  expect(report.problems.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
  expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  expect({ code, err: code === 0 ? "" : err }).toEqual({ code: 0, err: "" });
}, 60_000);

test("tags come in the order a user needs them, each described, and every operation uses one of them", async () => {
  const spec = (await h.call("GET", "/swagger/json")).body;
  const names = spec.tags.map((t: { name: string }) => t.name);
  expect(names).toEqual([
    "data sources",
    "backup policies",
    "attachments",
    "backup jobs",
    "downloads",
    "storage destinations",
    "restores",
    "restore plans",
    "notifications",
    "audit log",
    "nodes",
    "operations",
  ]);
  for (const t of spec.tags) expect(t.description.length).toBeGreaterThan(10);
  for (const [path, item] of Object.entries(spec.paths as Record<string, Record<string, { tags?: string[] }>>)) {
    for (const [method, op] of Object.entries(item))
      expect({ op: `${method} ${path}`, tags: op.tags?.every((t) => names.includes(t)) && op.tags.length === 1 }).toEqual({ op: `${method} ${path}`, tags: true });
  }
});

test("integers are typed integer, never the string-or-integer union of the validator's coercion", async () => {
  const spec = (await h.call("GET", "/swagger/json")).body;
  const text = JSON.stringify(spec);
  expect(text).not.toContain('"format":"integer"');
  expect(spec.components.schemas.BackupJob.properties.attempt).toEqual({ type: "integer" });
  expect(spec.components.schemas.BackupJob.properties.progress.properties.bytesIn.type).toBe("integer");
  // No field is a bare `number`: every count, size and duration the API carries is whole.
  const numbers: string[] = [];
  const walk = (node: unknown, at: string) => {
    if (Array.isArray(node)) node.forEach((child, i) => walk(child, `${at}/${i}`));
    else if (node && typeof node === "object") {
      const type = (node as { type?: unknown }).type;
      if (type === "number" || (Array.isArray(type) && type.includes("number"))) numbers.push(at);
      for (const [key, child] of Object.entries(node)) walk(child, `${at}/${key}`);
    }
  };
  walk(spec, "");
  expect(numbers).toEqual([]);
  const verify = spec.paths["/storage-destinations/{id}/verify"].post.responses["200"].content["application/json"].schema;
  expect(verify.properties.latencyMs.type).toBe("integer");
  expect(spec.components.schemas.StorageDestination.properties.lastVerify.properties.latencyMs.type).toBe("integer");
});

test("closed sets are enums a generated client turns into unions: statuses, triggers, audit action and target type, error codes", async () => {
  const schemas = (await h.call("GET", "/swagger/json")).body.components.schemas;
  const statuses = ["queued", "running", "succeeded", "failed", "canceled"];
  const enumOf = (schema: { type?: unknown; enum?: unknown }) => ({ type: schema.type, enum: schema.enum });
  expect(enumOf(schemas.BackupJob.properties.status)).toEqual({ type: "string", enum: statuses });
  expect(enumOf(schemas.Restore.properties.status)).toEqual({ type: "string", enum: statuses });
  expect(enumOf(schemas.BackupJob.properties.trigger)).toEqual({ type: "string", enum: ["schedule", "manual"] });
  expect(enumOf(schemas.Restore.properties.trigger)).toEqual({ type: "string", enum: ["schedule", "manual"] });
  expect(enumOf(schemas.AuditEvent.properties.action)).toEqual({ type: "string", enum: [...AUDIT_ACTIONS] });
  expect(enumOf(schemas.AuditEvent.properties.targetType)).toEqual({ type: "string", enum: [...AUDIT_TARGET_TYPES] });
  expect(enumOf(schemas.Error.properties.code)).toEqual({ type: "string", enum: expect.arrayContaining(["INVALID_INPUT", "NOT_FOUND", "CONFLICT"]) });
  for (const owner of ["BackupJob", "Restore"]) {
    const code = schemas[owner].properties.error.properties.code;
    expect({ owner, type: code.type, closed: Array.isArray(code.enum) && code.enum.length > 5 }).toEqual({ owner, type: "string", closed: true });
  }
});

test("every answer of every operation documents the x-request-id header", async () => {
  const spec = (await h.call("GET", "/swagger/json")).body;
  expect(spec.components.headers.RequestId).toMatchObject({ required: true, schema: { type: "string" } });
  const missing: string[] = [];
  for (const [path, item] of Object.entries(spec.paths as Record<string, Record<string, { responses: Record<string, { headers?: Record<string, unknown> }> }>>)) {
    for (const [method, op] of Object.entries(item)) {
      expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      for (const [status, response] of Object.entries(op.responses)) {
        if (!Bun.deepEquals(response.headers?.["x-request-id"], { $ref: "#/components/headers/RequestId" })) missing.push(`${method.toUpperCase()} ${path} ${status}`);
      }
    }
  }
  expect(missing).toEqual([]);
});
