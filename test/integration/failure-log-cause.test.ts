import { afterAll, beforeAll, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { attach, backupNow, createPolicy, createSource, must, waitForStatus } from "../helpers/api-flow.ts";
import { startFaultProxy, type FaultProxy } from "../helpers/fault-proxy.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { createPlan, runPlan } from "../helpers/plan-flow.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * A backup, a restore and a drill that fail because the S3 endpoint went away log why: the
 * failure line carries the error with its `cause` chain (the SDK's / socket's code), not just
 * the job's code and message. The destination's secret key never reaches the log.
 */
let h: Harness;
let s3: S3Server;
let proxy: FaultProxy;
let token: string;
let source: any;
let policyId: string;
let goodJob: any;
const scratch = tempDir("snapdb-failure-log");
// s3rver checks the key id only, so any secret signs; this one is easy to find in a log.
const SECRET = `sEcReT-${crypto.randomUUID()}`;

beforeAll(async () => {
  s3 = await startS3rver(["faillog"]);
  proxy = await startFaultProxy(s3.endpoint);
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path, SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1" });
  await h.runner.start();
  token = await h.token("org_faillog");
  const destination = await must(
    h,
    token,
    "POST",
    "/storage-destinations",
    {
      kind: "s3",
      name: "faillog",
      endpoint: proxy.endpoint,
      region: s3.region,
      bucket: "faillog",
      forcePathStyle: true,
      auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: SECRET },
    },
    201,
  );
  policyId = (await createPolicy(h, token, destination.id, { encryption: { enabled: false, recipients: [] } })).id;
  source = await createSource(h, token, { engine: "sqlite", path: smallSqlite(scratch.path) });
  await attach(h, token, source.id, policyId);
  goodJob = await backupNow(h, token, source.id, policyId);
  expect(goodJob.status).toBe("succeeded");
}, 60_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await Promise.all([proxy?.close(), s3?.close()]);
  scratch.cleanup();
});

/** The one log line `msg` wrote for this failure, parsed. */
function failureLine(msg: string): any {
  const lines = h.logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === msg);
  expect(lines.length).toBe(1);
  return lines[0];
}

/** Somewhere in the logged error's cause chain is a socket-level code (the SDK's request failed). */
function expectSocketCause(line: any): void {
  const codes: unknown[] = [];
  for (let e = line.error?.cause; e; e = e.cause) codes.push(e.code);
  expect(codes.some((c) => typeof c === "string" && /^(ECONNRESET|ECONNREFUSED|EPIPE|ConnectionRefused|ConnectionClosed|FailedToOpenSocket)$/.test(c))).toBe(true);
  expect(line.code).toBe("STORAGE_UNREACHABLE");
}

test("a backup to an S3 endpoint that resets logs the SDK's cause", async () => {
  proxy.rule = () => ({ reset: true });
  const job = await backupNow(h, token, source.id, policyId);
  expect(job.status).toBe("failed");
  expect(job.error.code).toBe("STORAGE_UNREACHABLE");
  expectSocketCause(failureLine("backup failed"));
});

// The restore is checked (HEAD) when asked for, then its download (GET) is reset.
test("a restore from it logs the cause too", async () => {
  proxy.rule = (req) => (req.method === "GET" ? { reset: true } : null);
  const target = await createSource(h, token, { engine: "sqlite", path: join(scratch.path, "restored.db") });
  const queued = await must(h, token, "POST", "/restores", { backupJobId: goodJob.id, targetDataSourceId: target.id }, 202);
  const done = await waitForStatus(h, token, `/restores/${queued.id}`);
  expect(done.status).toBe("failed");
  expectSocketCause(failureLine("restore failed"));
});

test("so does a drill", async () => {
  proxy.rule = (req) => (req.method === "GET" ? { reset: true } : null);
  const plan = await createPlan(h, token, { dataSourceId: source.id, mode: "drill", target: { dataSourceId: source.id } });
  const run = await runPlan(h, token, plan.id);
  expect(run.status).toBe("failed");
  expectSocketCause(failureLine("plan run failed"));
});

test("the destination's secret key is in no log line", () => {
  expect(h.logLines.length).toBeGreaterThan(0);
  expect(h.logLines.join("\n")).not.toContain(SECRET);
  // The source file is untouched by all of this.
  expect(new Database(source.path, { readonly: true }).query("SELECT count(*) AS n FROM t").get()).toEqual({ n: 20 });
});
