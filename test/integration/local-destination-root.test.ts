import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync } from "node:fs";
import { join, relative } from "node:path";
import { attach, backupNow, createPolicy, createSource, must } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * A local destination's directory swapped for a symlink that leads out of the allowed roots,
 * after the daemon has already used (and cached) the destination: every later operation must
 * notice, not only the first one. Real PostgreSQL dumps, real files, the real app over HTTP.
 */
let h: Harness;
let pg: PgServer;
let token: string;
const roots = tempDir("snapdb-allowed");
const outside = tempDir("snapdb-outside");
const ORG = "org_rootswap";

/** Every file under `dir`, relative to it (temp names included). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

beforeAll(async () => {
  pg = await startPostgres();
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);`, pg.database);
  h = await createHarness({ SNAPDB_ALLOWED_LOCAL_ROOTS: roots.path });
  await h.runner.start();
  token = await h.token(ORG);
}, 120_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await pg?.stop();
  roots.cleanup();
  outside.cleanup();
});

describe("local destination root re-checked on every operation", () => {
  test("a destination directory replaced by a symlink out of the allowed roots gets no backup, serves no file", async () => {
    const dir = join(roots.path, "nightly");
    mkdirSync(dir);
    const dst = await must(h, token, "POST", "/storage-destinations", { kind: "local", name: "nightly", path: dir }, 201);
    const source = await createSource(h, token, { engine: "postgres", host: pg.host, port: pg.port, database: pg.database }, { username: pg.user, password: pg.password });
    const streamed = await createPolicy(h, token, dst.id);
    // No compression, no encryption: the dump tool writes into the file directly (the other write path).
    const direct = await createPolicy(h, token, dst.id, { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } });
    await attach(h, token, source.id, streamed.id);
    await attach(h, token, source.id, direct.id);

    const first = await backupNow(h, token, source.id, streamed.id);
    expect(first.status).toBe("succeeded");
    expect(filesUnder(dir)).toEqual([first.objectKey]);
    const oldLink = await must(h, token, "POST", `/backup-jobs/${first.id}/download-link`, { expiresInSeconds: 300 });

    // The swap: the directory (with its backup) moves out of the allowed roots, a symlink takes its place.
    const moved = join(outside.path, "moved");
    renameSync(dir, moved);
    symlinkSync(moved, dir);
    const before = filesUnder(outside.path);

    for (const policy of [streamed, direct]) {
      const job = await backupNow(h, token, source.id, policy.id);
      expect(job.status).toBe("failed");
      expect(job.error.code).toBe("ACCESS_DENIED");
      expect(job.error.message).toContain("allowed local root");
    }
    expect(filesUnder(outside.path)).toEqual(before);

    // Reads through the symlink are refused too: verify, a new link, an old link, the file's delete.
    const verify = await must(h, token, "POST", `/backup-jobs/${first.id}/verify`);
    expect(verify.ok).toBe(false);
    expect(verify.error.code).toBe("STORAGE_ERROR");
    const link = await h.call("POST", `/backup-jobs/${first.id}/download-link`, { token, body: { expiresInSeconds: 300 } });
    expect(link.status).toBe(503);
    expect(link.body.code).toBe("UNAVAILABLE");
    const download = await h.app.handle(new Request(oldLink.url));
    expect(download.status).toBe(503);
    const del = await h.call("DELETE", `/backup-jobs/${first.id}/file`, { token });
    expect(del.status).toBe(503);
    expect(filesUnder(moved)).toEqual([first.objectKey]);
    expect(filesUnder(outside.path)).toEqual(before);
    const probe = await must(h, token, "POST", `/storage-destinations/${dst.id}/verify`);
    expect(probe.ok).toBe(false);
    expect(filesUnder(outside.path)).toEqual(before);

    // Put back where it belongs, the same cached destination works again.
    rmSync(dir);
    renameSync(moved, dir);
    const again = await backupNow(h, token, source.id, streamed.id);
    expect(again.status).toBe("succeeded");
    expect(filesUnder(dir)).toContain(again.objectKey);
  }, 120_000);
});
