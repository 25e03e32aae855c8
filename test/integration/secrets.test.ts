import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { orgIdentity } from "../../src/crypto/org-keys.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { storeFile } from "../../src/cli/runtime.ts";
import { attach, createPolicy, managedDestination, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type CallOptions, type Harness } from "../helpers/harness.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { storeAtRest } from "../helpers/store-matrix.ts";

/**
 * Secrets end to end: a realistic flow (credentials, verify, backups to managed disk and to a
 * bring-your-own S3, download links, verify, failures with a wrong password, deletes) with
 * known unique secrets, recording every API answer (status, headers, body), every log line
 * and the argv of every child process; then none of them, nor the store file, its WAL or
 * its shm, may contain any secret, raw or base64. The master key and the JWT secret live in
 * their own 0600 files by design: they must be nowhere else.
 */
const u = () => crypto.randomUUID().replaceAll("-", "");
// Characters that break naive URL or shell building (@ : / % ' $), so a leak through a
// connection string or a quoted argv would show.
const PG_PASSWORD = `pg@Pw:/%'$-${u()}`;
const MARIA_PASSWORD = `maria@Pw:/%$-${u()}`;
const WRONG_PASSWORD = `wrong@Pw-${u()}`;
const S3_SECRET = `s3-secret-${u()}`;
const ORG = "org_secrets";

let h: Harness;
let pg: PgServer;
let maria: MariaDbServer;
let s3: S3Server;
let token: string;
const answers: string[] = [];
const argvs: string[][] = [];
const sampled = new Map<number, string[]>();
let sampler: ReturnType<typeof setInterval> | undefined;
const realSpawn = Bun.spawn;

/** Every process the test process started (the in-process daemon's children among them) or any dump tool. */
function sampleProc() {
  for (const name of readdirSync("/proc")) {
    const pid = Number(name);
    if (!pid || sampled.has(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
      if (ppid === process.pid || /pg_dump|pg_restore|psql|mariadb-dump|mysqldump|mariadb\b|mysql\b|\bage\b|zstd/.test(argv.join(" "))) sampled.set(pid, argv);
    } catch {
      // gone already
    }
  }
}

async function call(method: string, path: string, opts: CallOptions = {}) {
  const res = await h.call(method, path, { token, ...opts });
  answers.push(`${method} ${path} → ${res.status}\n${JSON.stringify([...res.headers.entries()])}\n${res.text}`);
  return res;
}

async function must(method: string, path: string, body: unknown, status: number) {
  const res = await call(method, path, { body });
  if (res.status !== status) throw new Error(`${method} ${path} → ${res.status} (wanted ${status}): ${res.text}`);
  return res.body;
}

async function runNow(dataSourceId: string, policyId: string) {
  const job = await must("POST", "/backup-jobs/run-now", { dataSourceId, policyId }, 202);
  await waitForStatus(h, token, `/backup-jobs/${job.id}`);
  return (await call("GET", `/backup-jobs/${job.id}`)).body;
}

beforeAll(async () => {
  [pg, maria, s3] = await Promise.all([startPostgres({ password: PG_PASSWORD }), startMariaDb({ password: MARIA_PASSWORD }), startS3rver(["byo"])]);
  // Record the argv of every child the daemon spawns, whatever /proc sampling catches.
  (Bun as any).spawn = (argv: any, opts: any) => {
    argvs.push(Array.isArray(argv) ? [...argv] : [...(argv?.cmd ?? [])]);
    return realSpawn(argv, opts);
  };
  h = await createHarness({ SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1" });
  await h.runner.start();
  token = await h.token(ORG);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g;`, pg.database);
  maria.sql("CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'), (2, 'b');", maria.database);
  sampler = setInterval(sampleProc, 2);
}, 120_000);

afterAll(async () => {
  if (sampler) clearInterval(sampler);
  (Bun as any).spawn = realSpawn;
  await h?.runner.stop(1000);
  h?.close();
  await Promise.all([pg?.stop(), maria?.stop(), s3?.close()]);
});

describe("secrets never leak", () => {
  test("a realistic flow, then a grep of everything it left behind", async () => {
    // Sources with their passwords, verified for real (and once with a wrong password).
    const pgSrc = await must("POST", "/data-sources", { name: "pg", engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, 201);
    await must("PUT", `/data-sources/${pgSrc.id}/credentials`, { username: pg.user, password: WRONG_PASSWORD }, 204);
    expect((await must("POST", `/data-sources/${pgSrc.id}/verify`, undefined, 200)).error?.code).toBe("AUTH_FAILED");
    await must("PUT", `/data-sources/${pgSrc.id}/credentials`, { username: pg.user, password: PG_PASSWORD }, 204);
    expect((await must("POST", `/data-sources/${pgSrc.id}/verify`, undefined, 200)).ok).toBe(true);
    const mariaSrc = await must("POST", "/data-sources", { name: "maria", engine: "mariadb", host: maria.host, port: maria.port, database: maria.database }, 201);
    await must("PUT", `/data-sources/${mariaSrc.id}/credentials`, { username: maria.user, password: MARIA_PASSWORD }, 204);
    expect((await must("POST", `/data-sources/${mariaSrc.id}/verify`, undefined, 200)).ok).toBe(true);
    const badSrc = await must("POST", "/data-sources", { name: "pg-bad", engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, 201);
    await must("PUT", `/data-sources/${badSrc.id}/credentials`, { username: pg.user, password: WRONG_PASSWORD }, 204);

    // Destinations: managed local disk, and bring-your-own S3 with a secret key (verified).
    const managed = await managedDestination(h, token);
    const byo = await must(
      "POST",
      "/storage-destinations",
      {
        kind: "s3",
        name: "byo",
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: "byo",
        prefix: "team",
        forcePathStyle: true,
        auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: S3_SECRET },
      },
      201,
    );
    expect((await must("POST", `/storage-destinations/${byo.id}/verify`, undefined, 200)).ok).toBe(true);
    await must("PATCH", `/storage-destinations/${byo.id}`, { auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: S3_SECRET } }, 200);

    // Backups: PostgreSQL → S3 (encrypted), MariaDB → managed (encrypted), a wrong password → failed.
    const toS3 = await createPolicy(h, token, byo.id);
    const toDisk = await createPolicy(h, token, managed.id);
    for (const [src, pol] of [
      [pgSrc, toS3],
      [mariaSrc, toDisk],
      [badSrc, toDisk],
    ])
      await attach(h, token, src.id, pol.id);
    const pgJob = await runNow(pgSrc.id, toS3.id);
    const mariaJob = await runNow(mariaSrc.id, toDisk.id);
    const badJob = await runNow(badSrc.id, toDisk.id);
    expect([pgJob.status, mariaJob.status, badJob.status]).toEqual(["succeeded", "succeeded", "failed"]);

    // Verify, download links (presigned S3 and signed local), the downloads themselves.
    for (const job of [pgJob, mariaJob]) {
      expect((await must("POST", `/backup-jobs/${job.id}/verify`, undefined, 200)).ok).toBe(true);
      const link = await must("POST", `/backup-jobs/${job.id}/download-link`, { expiresInSeconds: 60 }, 200);
      // A local link is served by the app; a presigned S3 one by s3rver.
      const res = link.url.startsWith("http://localhost/") ? await h.app.handle(new Request(link.url)) : await fetch(link.url);
      answers.push(`GET ${link.url} → ${res.status}\n${JSON.stringify([...res.headers.entries()])}`);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }

    // Every read a user would do.
    for (const path of [
      "/data-sources",
      `/data-sources/${pgSrc.id}`,
      `/data-sources/${badSrc.id}/backup-jobs`,
      "/storage-destinations",
      `/storage-destinations/${byo.id}`,
      "/backup-policies",
      "/attachments",
      "/backup-jobs",
      `/backup-jobs/${badJob.id}`,
      "/audit-log?limit=200",
    ]) {
      expect((await call("GET", path)).status).toBe(200);
    }
    await call("GET", "/metrics");

    // Deletes: a file, credentials, a source with everything (cascade), then the S3 side.
    await must("DELETE", `/backup-jobs/${mariaJob.id}/file`, undefined, 204);
    await must("DELETE", `/data-sources/${badSrc.id}/credentials`, undefined, 204);
    await must("DELETE", `/data-sources/${pgSrc.id}?cascade=true`, undefined, 204);
    await must("DELETE", `/backup-policies/${toS3.id}?cascade=true`, undefined, 204);
    await must("DELETE", `/storage-destinations/${byo.id}`, undefined, 204);
    await Bun.sleep(20);
    sampleProc();

    // The haystacks.
    const identity = await orgIdentity(h.store.db, new SecretBox(h.master), ORG);
    expect(identity).toMatch(/^AGE-SECRET-KEY-1/);
    const secrets: Record<string, Uint8Array> = {
      "postgres password": Buffer.from(PG_PASSWORD),
      "mariadb password": Buffer.from(MARIA_PASSWORD),
      "wrong password": Buffer.from(WRONG_PASSWORD),
      "s3 secretAccessKey": Buffer.from(S3_SECRET),
      "age identity": Buffer.from(identity!),
      "jwt secret": h.secret,
      "master key": h.master,
    };
    const needles: [string, Buffer][] = Object.entries(secrets).flatMap(([name, bytes]) => {
      const b = Buffer.from(bytes);
      const forms: [string, Buffer][] = [
        [`${name} (raw)`, b],
        [`${name} (base64)`, Buffer.from(b.toString("base64").replace(/=+$/, ""))],
        [`${name} (base64url)`, Buffer.from(b.toString("base64url"))],
        [`${name} (hex)`, Buffer.from(b.toString("hex"))],
      ];
      if (name.includes("password")) forms.push([`${name} (url-encoded)`, Buffer.from(encodeURIComponent(b.toString()))]);
      return forms;
    });
    const store = storeFile(h.config);
    const haystacks: [string, Buffer][] = [
      ...(await storeAtRest(h, "PASSIVE")),
      ["log lines", Buffer.from(h.logLines.join("\n"))],
      ["API answers", Buffer.from(answers.join("\n"))],
      ["spawned argv", Buffer.from(argvs.map((a) => a.join(" ")).join("\n"))],
      ["/proc cmdlines", Buffer.from([...sampled.values()].map((a) => a.join(" ")).join("\n"))],
    ];
    // Every other file in the data dir too (backups are encrypted; the key files are the exception by design).
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
    for (const f of walk(h.dataDir)) {
      if (f === h.config.masterKeyFile || f === h.config.auth.jwtSecretFile || f.startsWith(store)) continue;
      haystacks.push([f, readFileSync(f)]);
    }
    const hits: string[] = [];
    for (const [where, hay] of haystacks) for (const [what, needle] of needles) if (hay.includes(needle)) hits.push(`${what} in ${where}`);
    expect(hits).toEqual([]);

    // The recordings are real: dump tools ran, with a password only through the environment.
    const tools = argvs.map((a) => a[0]!.split("/").at(-1)!);
    expect(tools).toEqual(expect.arrayContaining(["pg_dump"]));
    expect(tools.some((t) => /mariadb-dump|mysqldump/.test(t))).toBe(true);
    expect(h.logLines.length).toBeGreaterThan(10);
    expect(answers.length).toBeGreaterThan(30);
    console.log(
      `secrets: ${answers.length} answers, ${h.logLines.length} log lines, ${argvs.length} spawned argv, ${sampled.size} processes seen in /proc, ${haystacks.length} haystacks × ${needles.length} needles`,
    );
  }, 120_000);
});
