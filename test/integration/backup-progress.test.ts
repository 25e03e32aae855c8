import { afterAll, beforeAll, expect, test } from "bun:test";
import { attach, createPolicy, createSource, managedDestination } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";

/**
 * Live progress moves in every pipeline while a backup runs: `bytesIn` (the dump's bytes so
 * far) as well as `bytesStored`, encrypted or not, tool chain or daemon, local disk or S3.
 * A ~90 MB dump keeps each run going long enough to be watched.
 */
let h: Harness;
let pg: PgServer;
let s3: S3Server;
let token: string;
let sourceId: string;

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3rver(["progress"])]);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE big AS SELECT g, md5(g::text) || md5((g * 7)::text) AS t FROM generate_series(1, 1200000) g;`, pg.database);
  h = await createHarness();
  await h.runner.start();
  token = await h.token("org_progress");
  sourceId = (await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password })).id;
}, 120_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await Promise.all([pg?.stop(), s3?.close()]);
});

async function watch(destinationId: string, policy: Record<string, unknown>) {
  const pol = await createPolicy(h, token, destinationId, policy);
  await attach(h, token, sourceId, pol.id);
  const queued = (await h.call("POST", "/backup-jobs/run-now", { token, body: { dataSourceId: sourceId, policyId: pol.id } })).body;
  const whileRunning: { bytesIn: number; bytesStored: number }[] = [];
  for (;;) {
    const job = (await h.call("GET", `/backup-jobs/${queued.id}`, { token })).body;
    if (job.status === "running") whileRunning.push(job.progress);
    if (job.status !== "queued" && job.status !== "running") return { job, whileRunning };
    await Bun.sleep(20);
  }
}

const cases: [string, Record<string, unknown>, "managed" | "s3"][] = [
  ["zstd + age, tools write the local file", {}, "managed"],
  ["zstd + age, tools to S3", {}, "s3"],
  ["gzip + age, through the daemon", { compression: { algorithm: "gzip", level: 1 } }, "managed"],
  ["no compression + age", { compression: { algorithm: "none" } }, "managed"],
  ["no compression, no encryption: the dump tool alone", { compression: { algorithm: "none" }, encryption: { enabled: false } }, "managed"],
];

for (const [name, policy, where] of cases) {
  test(`bytesIn moves while it runs: ${name}`, async () => {
    const destinationId =
      where === "managed"
        ? (await managedDestination(h, token)).id
        : (
            await h.call("POST", "/storage-destinations", {
              token,
              body: {
                kind: "s3",
                name: `s3-${crypto.randomUUID().slice(0, 6)}`,
                endpoint: s3.endpoint,
                region: s3.region,
                bucket: "progress",
                prefix: "",
                forcePathStyle: true,
                auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
              },
            })
          ).body.id;
    const { job, whileRunning } = await watch(destinationId, policy);
    expect({ status: job.status, error: job.error }).toEqual({ status: "succeeded", error: null });
    // Seen part-way: more than nothing, less than the whole dump.
    const partway = whileRunning.filter((p) => p.bytesIn > 0 && p.bytesIn < job.sizeBytes);
    expect({ name, partway: partway.length > 0 }).toEqual({ name, partway: true });
    // Never ahead of the final count, never going backwards, but for the live count of a tool
    // chain: it is what zstd has read (/proc/<pid>/io), a few KiB of its own start-up included,
    // until zstd's exact total replaces it at the end.
    const SLACK = 64 * 1024;
    expect(whileRunning.every((p) => p.bytesIn <= job.sizeBytes + SLACK)).toBe(true);
    expect(whileRunning.every((p, i) => i === 0 || p.bytesIn >= whileRunning[i - 1]!.bytesIn - SLACK)).toBe(true);
    expect(job.progress).toEqual({ bytesIn: job.sizeBytes, bytesStored: job.storedBytes });
  }, 120_000);
}
