import { afterAll, beforeAll, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { attach, backupNow, createPolicy, createSource, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { startS3rver, type S3Server } from "../helpers/s3rver.ts";
import { backupPolicies } from "../../src/db/schema.ts";

/**
 * A backup stopped by its timeout while pg_dump waits on a lock stops pg_dump the way the
 * tool asks to be stopped: SIGTERM, on which it cancels its query on the server. A SIGKILL
 * first (the stream into S3 being canceled used to kill the chain at once) left the backend
 * queued on the lock until the lock went, and a waiting ACCESS SHARE request holds up every
 * later request for a conflicting lock on that table (DDL queues behind it).
 */
let pg: PgServer;
let s3: S3Server;
let h: Harness;
let token: string;
let destinationId: string;
let sourceId: string;

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3rver(["aborts"])]);
  pg.psql("CREATE TABLE locked (x int); INSERT INTO locked VALUES (1);", pg.database);
  pg.psql(`ALTER TABLE locked OWNER TO ${pg.user};`, pg.database);
  h = await createHarness();
  await h.runner.start();
  token = await h.token("org_aborts");
  destinationId = (
    await must(
      h,
      token,
      "POST",
      "/storage-destinations",
      {
        kind: "s3",
        name: "aborts",
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: "aborts",
        forcePathStyle: true,
        auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      },
      201,
    )
  ).id;
  sourceId = (await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password })).id;
}, 60_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await Promise.all([s3?.close(), pg?.stop()]);
});

const waitingOnLock = () => Number(pg.psql(`SELECT count(*) FROM pg_stat_activity WHERE datname = '${pg.database}' AND wait_event_type = 'Lock';`).trim());

for (const [label, extra] of [
  ["pg_dump | zstd | age into S3", {}],
  ["pg_dump alone into S3 (no compression, no encryption)", { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } }],
] as const) {
  test(`${label}: a timeout while pg_dump waits on a lock leaves no backend waiting on it`, async () => {
    const policy = await createPolicy(h, token, destinationId, extra);
    // The API's floor is 60 s; the runner honours whatever the row says.
    await h.store.db.update(backupPolicies).set({ timeoutSeconds: 2 }).where(eq(backupPolicies.id, policy.id));
    const attachment = await attach(h, token, sourceId, policy.id);
    const release = await holdTableLock(pg, pg.database, "locked", "ACCESS EXCLUSIVE");
    try {
      // Several rounds: the SIGKILL raced pg_dump's own cancel, so one round proves little.
      for (let round = 0; round < 3; round++) {
        const job = await backupNow(h, token, sourceId, policy.id);
        expect(job.status).toBe("failed");
        expect(job.error.code).toBe("TIMEOUT");
        // Still holding the lock: a backend left behind would wait on it until the release.
        const deadline = Date.now() + 3000;
        while (waitingOnLock() > 0 && Date.now() < deadline) await Bun.sleep(100);
        expect(waitingOnLock()).toBe(0);
      }
    } finally {
      await release();
      await must(h, token, "DELETE", `/attachments/${attachment.id}`, undefined, 204);
    }
  }, 90_000);
}
