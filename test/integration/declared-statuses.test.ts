import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { SCOPES } from "../../src/http/auth.ts";
import { OPERATION_ERRORS } from "../../src/http/openapi-responses.ts";
import { backupJobs } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { freePort } from "../helpers/daemon.ts";
import { createHarness, type CallOptions, type Harness } from "../helpers/harness.ts";
import { ApiContract, contractFor } from "../helpers/status-contract.ts";
import { pinnedToHarness } from "../helpers/store-matrix.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Every status a route answers is declared, with its body, in the served document; and
 * every status the document declares (but 500) is one a route really gives. The harness
 * holds each answer to the document (test/helpers/status-contract.ts): an undeclared
 * status, an answer without `x-request-id` or a body off its schema fails the call. This
 * file drives each operation into each of its statuses: the common ones (401, 403, 404,
 * 400, 413) for every operation, then the conflicts and outages of a real journey on a
 * SQLite source and a local disk; the last test checks nothing declared went unseen.
 */

const dirs = tempDir("snapdb-statuses");
const sqliteRoot = join(dirs.path, "sqlite");
const localRoot = join(dirs.path, "backups");
const ORG = "org_statuses";

let h: Harness;
let closed: Harness;
let contract: ApiContract;
let token: string;
let stsPort: number;
const seen = new Set<string>();
const savedAws = { id: process.env.AWS_ACCESS_KEY_ID, key: process.env.AWS_SECRET_ACCESS_KEY };

/** One call, checked against the document by the harness, and noted as `METHOD /template status`. */
async function hit(method: string, path: string, expected: number, opts: CallOptions & { via?: Harness } = {}) {
  const res = await (opts.via ?? h).call(method, path, { token, ...opts });
  const op = contract.operationFor(method, path);
  if (op) seen.add(`${op.method} ${op.template} ${res.status}`);
  expect({ call: `${method} ${path}`, status: res.status, body: res.status === expected ? "" : res.text }).toEqual({
    call: `${method} ${path}`,
    status: expected,
    body: "",
  });
  return res.body;
}

beforeAll(async () => {
  mkdirSync(sqliteRoot);
  mkdirSync(localRoot);
  stsPort = await freePort(); // nothing listens: the operator's STS is down
  // The daemon's own AWS identity, which it would send to its STS.
  process.env.AWS_ACCESS_KEY_ID = "AKIASTATUSESTEST0001";
  process.env.AWS_SECRET_ACCESS_KEY = "statuses-test-secret";
  h = await createHarness({
    SNAPDB_ALLOWED_SQLITE_ROOTS: sqliteRoot,
    SNAPDB_ALLOWED_LOCAL_ROOTS: localRoot,
    SNAPDB_STS_ENDPOINT: `http://127.0.0.1:${stsPort}`,
  });
  closed = await createHarness({ SNAPDB_METRICS_PUBLIC: "false" });
  contract = contractFor((await h.call("GET", "/swagger/json")).body);
  token = await h.token(ORG);
});

afterAll(async () => {
  await h.runner.stop(5_000);
  h.close();
  closed.close();
  dirs.cleanup();
  for (const [name, value] of [
    ["AWS_ACCESS_KEY_ID", savedAws.id],
    ["AWS_SECRET_ACCESS_KEY", savedAws.key],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe("the contract check", () => {
  test("refuses an undeclared status, a missing x-request-id, an off-schema body and a body where none is declared", async () => {
    const real = await h.call("GET", "/data-sources/ds_nope", { token });
    expect(real.status).toBe(404);
    const answer = { method: "GET", path: "/data-sources/ds_nope", status: 404, headers: real.headers, text: real.text };
    expect(contract.problems(answer)).toEqual([]);

    const without404 = structuredClone(contract.spec);
    delete without404.paths["/data-sources/{id}"].get.responses["404"];
    expect(new ApiContract(without404).problems(answer).join()).toContain("GET /data-sources/{id} → 404: status not declared");

    expect(contract.problems({ ...answer, headers: new Headers({ "content-type": "application/json" }) }).join()).toContain("no x-request-id header");
    const offSchema = { ...answer, status: 200, text: JSON.stringify({ id: "ds_1", name: "x", engine: "oracle" }) };
    expect(contract.problems(offSchema).join()).toContain("body does not match the declared schema");
    const withBody = { method: "DELETE", path: "/attachments/att_1", status: 204, headers: real.headers, text: "{}" };
    expect(contract.problems(withBody).join()).toContain("declared without a body");
    expect(() => contract.check({ ...answer, status: 418 })).toThrow("status not declared");
  });

  test("the per-operation statuses name only operations the document has", () => {
    const operations = Object.entries(contract.spec.paths as Record<string, object>).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
    expect(Object.keys(OPERATION_ERRORS).filter((key) => !operations.includes(key))).toEqual([]);
  });
});

describe("the statuses every operation shares", () => {
  const operations = () =>
    Object.entries(contract.spec.paths as Record<string, Record<string, any>>).flatMap(([template, item]) =>
      Object.entries(item).map(([method, op]) => ({ template, method: method.toUpperCase(), op })),
    );
  /** A body each operation accepts, so an unknown id is what fails. */
  const VALID_BODY: Record<string, unknown> = {
    "PATCH /attachments/{id}": { enabled: true },
    "PUT /data-sources/{id}/credentials": { username: "u", password: "p" },
    "PATCH /data-sources/{id}": {},
    "PATCH /backup-policies/{id}": {},
    "PATCH /storage-destinations/{id}": {},
    "PATCH /notification-channels/{id}": {},
    "PATCH /notification-rules/{id}": {},
    "PATCH /restore-plans/{id}": {},
  };

  test("401 without a token, 403 with another scope", async () => {
    for (const { template, method, op } of operations()) {
      const scope = op["x-required-scope"] as string | undefined;
      if (!scope) continue;
      const path = template.replace(/\{\w+\}/g, "nope_1");
      await hit(method, path, 401, { token: null });
      const other = SCOPES.filter((s) => s !== scope)[0]!;
      await hit(method, path, 403, { token: await h.token(ORG, { scopes: [other] }) });
    }
  });

  test("404 for an id that is not the organisation's", async () => {
    for (const { template, method } of operations()) {
      if (!template.includes("{id}")) continue;
      const key = `${method} ${template}`;
      await hit(method, template.replace("{id}", "nope_1"), 404, VALID_BODY[key] === undefined ? {} : { body: VALID_BODY[key] });
    }
  });

  test("400 for bad input: a field that does not exist, a malformed body, an id or limit out of bounds, a NUL in any query", async () => {
    for (const { template, method, op } of operations()) {
      const path = template.replace(/\{\w+\}/g, "nope_1");
      if (op.requestBody) await hit(method, path, 400, { body: { notAField: true } });
      else if (method !== "GET") await hit(method, path, 400, { rawBody: "{" });
      else if (template.includes("{")) await hit(method, template.replace(/\{\w+\}/, "x".repeat(5000)), 400);
      else if (op.parameters?.length) await hit(method, `${path}?limit=0`, 400);
      // Even an operation without parameters (/healthz, /metrics, …) refuses a NUL in its query.
      await hit(method, `${path}?x=%00`, 400);
    }
  });

  test("413 for a declared length over the body limit, on every operation", async () => {
    const overLimit = { "content-length": String(h.config.http.bodyLimitBytes + 1) };
    for (const { template, method } of operations()) {
      await hit(method, template.replace(/\{\w+\}/g, "nope_1"), 413, { token: null, headers: overLimit });
    }
  });
});

describe("a journey through every conflict and outage", () => {
  let sqlitePath: string;
  let destination: any;
  let otherDestination: any;
  let source: any;
  let otherSource: any;
  let policy: any;
  let otherPolicy: any;
  let attachment: any;

  test("operations: health, readiness, metrics", async () => {
    await hit("GET", "/healthz", 200);
    await hit("GET", "/readyz", 200);
    await hit("GET", "/metrics", 200);
    h.readiness.register("statuses-test", () => false);
    await hit("GET", "/readyz", 503);
    h.readiness.register("statuses-test", () => true);
    await hit("GET", "/metrics", 401, { via: closed, token: null });
    await hit("GET", "/metrics", 403, { via: closed, token: await closed.token(ORG) });
    await hit("GET", "/nodes", 200);
  });

  test("destinations: created once, a name twice is 409, the managed one can't change, one in use can't go", async () => {
    await hit("POST", "/storage-destinations/managed/ensure", 201);
    const managed = await hit("POST", "/storage-destinations/managed/ensure", 200);
    destination = await hit("POST", "/storage-destinations", 201, { body: { kind: "local", name: "disk", path: join(localRoot, "disk") } });
    await hit("POST", "/storage-destinations", 409, { body: { kind: "local", name: "disk", path: join(localRoot, "disk2") } });
    otherDestination = await hit("POST", "/storage-destinations", 201, {
      body: { kind: "s3", name: "sts-down", endpoint: `http://127.0.0.1:${stsPort}`, bucket: "backups", auth: { type: "assumeRole", roleArn: "arn:aws:iam::123456789012:role/snapdb" } },
    });
    await hit("PATCH", `/storage-destinations/${otherDestination.id}`, 409, { body: { name: "disk" } });
    await hit("PATCH", `/storage-destinations/${managed.id}`, 409, { body: { name: "mine" } });
    await hit("DELETE", `/storage-destinations/${managed.id}`, 409);
    await hit("PATCH", `/storage-destinations/${otherDestination.id}`, 200, { body: { name: "sts-down-2" } });
    await hit("GET", "/storage-destinations", 200);
    await hit("GET", `/storage-destinations/${destination.id}`, 200);
    await hit("GET", "/storage-destinations/assume-role-info", 200);
    expect(await hit("POST", `/storage-destinations/${destination.id}/verify`, 200)).toMatchObject({ ok: true });
    expect(await hit("POST", `/storage-destinations/${otherDestination.id}/verify`, 200)).toMatchObject({ ok: false, error: { code: "ASSUME_ROLE_FAILED" } });
  });

  test("data sources, policies, attachments: names are unique, references exist, attached things can't go", async () => {
    sqlitePath = join(sqliteRoot, "app.db");
    const db = new Database(sqlitePath);
    db.run("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)");
    db.run("INSERT INTO notes (body) VALUES ('kept by the backup')");
    db.close();
    source = await hit("POST", "/data-sources", 201, { body: { name: "app", engine: "sqlite", path: sqlitePath, ...pinnedToHarness() } });
    await hit("POST", "/data-sources", 409, { body: { name: "app", engine: "sqlite", path: sqlitePath, ...pinnedToHarness() } });
    otherSource = await hit("POST", "/data-sources", 201, { body: { name: "other", engine: "sqlite", path: join(sqliteRoot, "other.db"), ...pinnedToHarness() } });
    await hit("PATCH", `/data-sources/${otherSource.id}`, 409, { body: { name: "app" } });
    await hit("PATCH", `/data-sources/${otherSource.id}`, 200, { body: { labels: { team: "core" } } });
    await hit("PUT", `/data-sources/${otherSource.id}/credentials`, 204, { body: { username: "u", password: "p" } });
    await hit("DELETE", `/data-sources/${otherSource.id}/credentials`, 204);
    expect(await hit("POST", `/data-sources/${source.id}/verify`, 200)).toMatchObject({ ok: true });
    // No physical policy: the window is empty (from and to null), still a 200.
    expect(await hit("GET", `/data-sources/${source.id}/recovery-window`, 200)).toMatchObject({ from: null, to: null });
    await hit("GET", "/data-sources", 200);
    await hit("GET", `/data-sources/${source.id}`, 200);

    const policyBody = (name: string, destinationId: string) => ({
      name,
      scheduleCron: "0 3 1 1 *",
      destinationId,
      retention: { keepLast: 5 },
      compression: { algorithm: "none" },
      encryption: { enabled: false },
      retries: 0,
    });
    await hit("POST", "/backup-policies", 404, { body: policyBody("nightly", "dst_nope") });
    policy = await hit("POST", "/backup-policies", 201, { body: policyBody("nightly", destination.id) });
    await hit("POST", "/backup-policies", 409, { body: policyBody("nightly", destination.id) });
    otherPolicy = await hit("POST", "/backup-policies", 201, { body: policyBody("weekly", otherDestination.id) });
    await hit("PATCH", `/backup-policies/${otherPolicy.id}`, 409, { body: { name: "nightly" } });
    await hit("PATCH", `/backup-policies/${otherPolicy.id}`, 404, { body: { destinationId: "dst_nope" } });
    await hit("PATCH", `/backup-policies/${otherPolicy.id}`, 200, { body: { retries: 1 } });
    await hit("GET", "/backup-policies", 200);
    await hit("GET", `/backup-policies/${policy.id}`, 200);

    await hit("POST", "/attachments", 404, { body: { dataSourceId: "ds_nope", policyId: policy.id } });
    attachment = await hit("POST", "/attachments", 201, { body: { dataSourceId: source.id, policyId: policy.id } });
    await hit("POST", "/attachments", 409, { body: { dataSourceId: source.id, policyId: policy.id } });
    await hit("PATCH", `/attachments/${attachment.id}`, 200, { body: { enabled: false } });
    await hit("GET", "/attachments", 200);
    await hit("GET", `/attachments/${attachment.id}`, 200);

    await hit("DELETE", `/backup-policies/${policy.id}`, 409);
    await hit("DELETE", `/data-sources/${source.id}`, 409);
    await hit("DELETE", `/storage-destinations/${destination.id}`, 409);
  });

  test("jobs: one queued per source, a finished one can't be canceled, a canceled one has no file", async () => {
    const job = await hit("POST", "/backup-jobs/run-now", 202, { body: { dataSourceId: source.id } });
    await hit("POST", "/backup-jobs/run-now", 409, { body: { dataSourceId: source.id } });
    await hit("POST", `/backup-jobs/${job.id}/cancel`, 202);
    await hit("POST", `/backup-jobs/${job.id}/cancel`, 409);
    await hit("POST", `/backup-jobs/${job.id}/verify`, 409);
    await hit("POST", `/backup-jobs/${job.id}/download-link`, 409);
    await hit("DELETE", `/backup-jobs/${job.id}/file`, 409);
    await hit("POST", "/restores", 409, { body: { backupJobId: job.id } });
  });

  test("a real backup, its file, a refused and a real restore, and storage outages", async () => {
    await h.runner.start();
    let job = await hit("POST", "/backup-jobs/run-now", 202, { body: { dataSourceId: source.id } });
    job = await waitFor(`/backup-jobs/${job.id}`);
    expect(job).toMatchObject({ status: "succeeded", error: null });
    await hit("GET", "/backup-jobs", 200);
    await hit("GET", `/data-sources/${source.id}/backup-jobs`, 200);
    expect(await hit("POST", `/backup-jobs/${job.id}/verify`, 200)).toMatchObject({ ok: true });

    const link = await hit("POST", `/backup-jobs/${job.id}/download-link`, 200, { body: { expiresInSeconds: 60 } });
    const download = new URL(link.url).pathname;
    await hit("GET", download, 200, { token: null });
    await hit("GET", `${download.slice(0, -4)}AAAA`, 403, { token: null });

    // The object's directory turns into a file: the disk answers neither the file nor "no such file".
    const [file] = (readdirSync(join(localRoot, "disk"), { recursive: true }) as string[]).filter((f) => f.includes(job.id));
    const dir = dirname(join(localRoot, "disk", file!));
    renameSync(dir, `${dir}.aside`);
    writeFileSync(dir, "not a directory");
    await hit("GET", download, 503, { token: null });
    await hit("DELETE", `/backup-jobs/${job.id}/file`, 503);
    rmSync(dir);
    renameSync(`${dir}.aside`, dir);

    // The target holds a table: refused without clean; replaced with it.
    await hit("POST", "/restores", 409, { body: { backupJobId: job.id } });
    let restore = await hit("POST", "/restores", 202, { body: { backupJobId: job.id, clean: true } });
    restore = await waitFor(`/restores/${restore.id}`);
    expect(restore).toMatchObject({ status: "succeeded", error: null });
    await hit("POST", `/restores/${restore.id}/cancel`, 409);
    await h.runner.stop(5_000); // a restore that stays queued, to cancel
    const queued = await hit("POST", "/restores", 202, { body: { backupJobId: job.id, clean: true } });
    expect(await hit("POST", `/restores/${queued.id}/cancel`, 202)).toMatchObject({ status: "canceled" });
    await hit("GET", "/restores", 200);
    await hit("GET", `/restores/${restore.id}`, 200);

    await hit("DELETE", `/backup-jobs/${job.id}/file`, 204);
    await hit("GET", download, 404, { token: null });

    // A backup on a destination whose role can't be assumed (the operator's STS is down).
    const stuck = newId("job");
    await h.store.db.insert(backupJobs).values({
      id: stuck,
      orgId: ORG,
      dataSourceId: otherSource.id,
      policyId: otherPolicy.id,
      destinationId: otherDestination.id,
      trigger: "manual",
      status: "succeeded",
      queuedAt: Date.now(),
      objectKey: `${ORG}/x/${stuck}.sqlite`,
      storedBytes: 1,
      sizeBytes: 1,
      sha256: "0".repeat(64),
      format: { engine: "sqlite", dump: "sqlite", compression: "none", encrypted: false },
    });
    await hit("POST", `/backup-jobs/${stuck}/download-link`, 503);
    await hit("DELETE", `/backup-jobs/${stuck}/file`, 503);
    await hit("GET", "/audit-log", 200);
  });

  test("notifications: a channel name once, rules name only the organisation's own things", async () => {
    const body = { name: "ops-hook", type: "webhook", config: { url: "http://127.0.0.1:9/hook", secret: "s".repeat(32) } };
    const channel = await hit("POST", "/notification-channels", 201, { body });
    await hit("POST", "/notification-channels", 409, { body });
    const other = await hit("POST", "/notification-channels", 201, { body: { ...body, name: "other-hook" } });
    await hit("PATCH", `/notification-channels/${other.id}`, 409, { body: { name: "ops-hook" } });
    await hit("PATCH", `/notification-channels/${other.id}`, 200, { body: { name: "second-hook" } });
    await hit("GET", "/notification-channels", 200);
    await hit("GET", `/notification-channels/${channel.id}`, 200);
    await hit("POST", "/notification-rules", 404, { body: { channelId: "nch_nope", events: ["backup.failed"] } });
    const rule = await hit("POST", "/notification-rules", 201, { body: { channelId: channel.id, events: ["backup.failed"], dataSourceId: source.id } });
    await hit("PATCH", `/notification-rules/${rule.id}`, 404, { body: { channelId: "nch_nope" } });
    await hit("PATCH", `/notification-rules/${rule.id}`, 200, { body: { events: ["backup.failed", "backup.stale"] } });
    await hit("GET", "/notification-rules", 200);
    await hit("GET", `/notification-rules/${rule.id}`, 200);
    await hit("POST", `/notification-channels/${channel.id}/test`, 202);
    await hit("GET", "/notification-deliveries", 200);
    await hit("DELETE", `/notification-rules/${rule.id}`, 204);
    await hit("DELETE", `/notification-channels/${other.id}`, 204);
    await hit("DELETE", `/notification-channels/${channel.id}`, 204);
  });

  test("restore plans: made, read, changed, run, deleted", async () => {
    const body = { name: "weekly-drill", dataSourceId: source.id, mode: "drill", scheduleCron: "0 4 * * 0", target: { dataSourceId: source.id } };
    const plan = await hit("POST", "/restore-plans", 201, { body });
    await hit("POST", "/restore-plans", 409, { body });
    const other = await hit("POST", "/restore-plans", 201, { body: { ...body, name: "other-drill" } });
    await hit("PATCH", `/restore-plans/${other.id}`, 409, { body: { name: "weekly-drill" } });
    await hit("DELETE", `/restore-plans/${other.id}`, 204);
    await hit("GET", "/restore-plans", 200);
    await hit("GET", `/restore-plans/${plan.id}`, 200);
    await hit("PATCH", `/restore-plans/${plan.id}`, 200, { body: { enabled: false } });
    // The runner is stopped by now: the run stays queued, and is canceled.
    const run = await hit("POST", `/restore-plans/${plan.id}/run-now`, 202);
    await hit("POST", `/restore-plans/${plan.id}/run-now`, 409);
    await hit("POST", `/restores/${run.id}/cancel`, 202);
    await hit("DELETE", `/restore-plans/${plan.id}`, 204);
  });

  test("what an organisation built can be taken down again", async () => {
    await hit("DELETE", `/attachments/${attachment.id}`, 204);
    await hit("DELETE", `/backup-policies/${policy.id}?cascade=true`, 204);
    await hit("DELETE", `/data-sources/${source.id}?cascade=true`, 204);
    await hit("DELETE", `/storage-destinations/${destination.id}`, 204);
  });
});

test("every status the document declares, but 500, is one the operation was seen to answer", () => {
  const unseen: string[] = [];
  for (const [template, item] of Object.entries(contract.spec.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(item)) {
      for (const status of Object.keys(op.responses)) {
        const pair = `${method.toUpperCase()} ${template} ${status}`;
        if (status !== "500" && !seen.has(pair)) unseen.push(pair);
      }
    }
  }
  expect(unseen).toEqual([]);
});

async function waitFor(path: string): Promise<any> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const body = await hit("GET", path, 200);
    if (["succeeded", "failed", "canceled"].includes(body.status)) return body;
    if (Date.now() > deadline) throw new Error(`${path} still ${body.status}`);
    await Bun.sleep(25);
  }
}
