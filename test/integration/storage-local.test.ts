import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DownloadTokens } from "../../src/storage/download-token.ts";
import { StorageError } from "../../src/storage/errors.ts";
import { backupObjectKey, orgSegment } from "../../src/storage/keys.ts";
import { LocalDriver } from "../../src/storage/local.ts";
import { TEMP_MARK } from "../../src/storage/local-paths.ts";
import { bytesStream, sha256Of } from "../helpers/storage-streams.ts";
import { tempDir } from "../helpers/tmp.ts";

let dir: { path: string; cleanup: () => void };
let root: string;
let outside: string;
let driver: LocalDriver;

beforeAll(() => {
  dir = tempDir("snapdb-local");
  root = join(dir.path, "root");
  outside = join(dir.path, "outside");
  mkdirSync(root);
  mkdirSync(outside);
  writeFileSync(join(outside, "secret.txt"), "outside");
  driver = new LocalDriver({ root });
});
afterAll(() => dir.cleanup());

const one = () => bytesStream(new Uint8Array([1]));
async function refused(p: Promise<unknown>) {
  const err = await p.catch((e) => e);
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe("INVALID_KEY");
}

describe("local driver: every key stays under its root", () => {
  test("'..', absolute keys, NUL bytes, backslashes, empty segments and temp names are refused", async () => {
    for (const key of ["../x", "a/../../x", "a/./b", "/etc/passwd", "a//b", "nul\0x", "a\\..\\b", "", `a/${TEMP_MARK}x`]) {
      await refused(driver.put(key, one()));
      await refused(driver.get(key));
      await refused(driver.delete(key));
      await refused(driver.openDirectWrite(key));
    }
    expect(readdirSync(dir.path).sort()).toEqual(["outside", "root"]);
  });

  test("a symlinked directory inside the root can't be used to write, read or delete outside", async () => {
    symlinkSync(outside, join(root, "link"));
    await refused(driver.put("link/new.txt", one()));
    await refused(driver.openDirectWrite("link/new.txt"));
    expect(readdirSync(outside)).toEqual(["secret.txt"]);
    await refused(driver.get("link/secret.txt"));
    await refused(driver.delete("link/secret.txt"));
    expect(existsSync(join(outside, "secret.txt"))).toBe(true);
    expect(await driver.head("link/secret.txt").catch((e) => e)).toBeInstanceOf(StorageError);
    const listed = [];
    for await (const o of driver.list("")) listed.push(o.key);
    expect(listed).not.toContain("link/secret.txt");
  });

  test("a symlinked file pointing outside is not served", async () => {
    symlinkSync(join(outside, "secret.txt"), join(root, "file-link"));
    await refused(driver.get("file-link"));
  });
});

describe("local driver: crash safety", () => {
  test("a leftover temp file (a crash mid-upload) is invisible and cleanupUpload removes it", async () => {
    mkdirSync(join(root, "org", "ds"), { recursive: true });
    const tmp = join(root, "org", "ds", `${TEMP_MARK}job.sql.zst.abc123`);
    writeFileSync(tmp, "half a dump");
    expect(await driver.head("org/ds/job.sql.zst")).toBeNull();
    const listed = [];
    for await (const o of driver.list("org/")) listed.push(o.key);
    expect(listed).toEqual([]);
    await driver.cleanupUpload("org/ds/job.sql.zst");
    expect(existsSync(tmp)).toBe(false);
  });

  test("files are written 0600 and appear only when complete", async () => {
    const put = await driver.put("org/ds/2026/11/26/job_1.sql.zst", bytesStream(new TextEncoder().encode("complete")));
    expect(put.size).toBe(8);
    const files = readdirSync(join(root, "org/ds/2026/11/26"));
    expect(files).toEqual(["job_1.sql.zst"]);
    expect(statSync(join(root, "org/ds/2026/11/26/job_1.sql.zst")).mode & 0o777).toBe(0o600);
    expect((await sha256Of((await driver.get("org/ds/2026/11/26/job_1.sql.zst")).body)).size).toBe(8);
  });

  test("a direct write (a tool's stdout): 0600, invisible until committed, gone when discarded or after a crash", async () => {
    const key = "direct/ds/2026/11/27/job_2.dump.zst";
    const file = await driver.openDirectWrite(key);
    expect(statSync(`/proc/self/fd/${file.fd}`).mode & 0o777).toBe(0o600);
    // A child process writes into it, as the backup chain's last tool does.
    const child = Bun.spawn(["sh", "-c", "printf 'written by a tool'"], { stdout: file.fd });
    expect(await child.exited).toBe(0);
    expect(await driver.head(key)).toBeNull();
    const listed = [];
    for await (const o of driver.list("direct/")) listed.push(o.key);
    expect(listed).toEqual([]);
    expect(await file.commit()).toEqual({ size: 17 });
    expect(await new Response((await driver.get(key)).body).text()).toBe("written by a tool");
    expect(statSync(join(root, key)).mode & 0o777).toBe(0o600);
    await file.discard(); // a no-op once committed
    expect(existsSync(join(root, key))).toBe(true);
    await driver.delete(key);

    const dropped = await driver.openDirectWrite(key);
    Bun.spawnSync(["sh", "-c", "printf half"], { stdout: dropped.fd });
    await dropped.discard();
    expect(existsSync(join(root, "direct/ds/2026/11/27")) ? readdirSync(join(root, "direct/ds/2026/11/27")) : []).toEqual([]);

    // A crash leaves the temp file of a direct write: recovery removes it like a put's.
    const crashed = await driver.openDirectWrite(key);
    expect(readdirSync(join(root, "direct/ds/2026/11/27")).filter((n) => n.startsWith(TEMP_MARK))).toHaveLength(1);
    await driver.cleanupUpload(key);
    expect(readdirSync(join(root, "direct/ds/2026/11/27"))).toEqual([]);
    await crashed.discard(); // only closes the fd: the file is gone
  });

  test("a direct write holding other than the bytes the caller counted is discarded, not stored", async () => {
    const key = "direct/ds/2026/11/29/job_4.dump.zst";
    const file = await driver.openDirectWrite(key);
    Bun.spawnSync(["sh", "-c", "printf 12345"], { stdout: file.fd });
    const err = await file.commit(4).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.message).toContain("5 bytes on disk, 4 expected");
    expect(readdirSync(join(root, "direct/ds/2026/11/29"))).toEqual([]);
  });

  test("a direct write whose caller gave up (aborted) is refused at commit and leaves nothing", async () => {
    const abort = new AbortController();
    const key = "direct/ds/2026/11/28/job_3.dump.zst";
    const file = await driver.openDirectWrite(key, { signal: abort.signal });
    Bun.spawnSync(["sh", "-c", "printf whole"], { stdout: file.fd });
    abort.abort();
    const err = await file.commit().catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.code).toBe("ABORTED");
    expect(readdirSync(join(root, "direct/ds/2026/11/28"))).toEqual([]);
    expect(await driver.openDirectWrite(key, { signal: abort.signal }).catch((e) => e.code)).toBe("ABORTED");
  });

  test("delete prunes the date directories it empties", async () => {
    await driver.delete("org/ds/2026/11/26/job_1.sql.zst");
    expect(existsSync(join(root, "org/ds/2026"))).toBe(false);
    expect(existsSync(root)).toBe(true);
  });
});

describe("object keys and download tokens", () => {
  test("backup keys follow {prefix}/{orgId}/{dataSourceId}/{YYYY}/{MM}/{DD}/{jobId}.{ext}", () => {
    const at = new Date("2026-03-04T23:59:00Z");
    expect(backupObjectKey({ prefix: "/snap/db/", orgId: "org_a", dataSourceId: "ds_1", jobId: "job_9", ext: "dump.zst.age", at })).toBe("snap/db/org_a/ds_1/2026/03/04/job_9.dump.zst.age");
    expect(backupObjectKey({ prefix: "", orgId: "org_a", dataSourceId: "ds_1", jobId: "job_9", ext: ".sql.zst", at })).toBe("org_a/ds_1/2026/03/04/job_9.sql.zst");
    // An org id that is not a safe segment can neither escape nor collide.
    expect(orgSegment("../x")).toMatch(/^o-[A-Za-z0-9_-]+$/);
    expect(() => backupObjectKey({ prefix: "..", orgId: "o", dataSourceId: "ds", jobId: "j", ext: "x", at })).toThrow();
  });

  test("tokens are bound to destination, key and expiry, and to the signing key", () => {
    const tokens = new DownloadTokens(new Uint8Array(32).fill(1));
    const grant = { destinationId: "dst_1", key: "a/b", expiresAt: Date.now() + 60_000, filename: "b" };
    const token = tokens.sign(grant);
    expect(tokens.verify(token)).toEqual({ ok: true, grant });
    expect(tokens.verify(token, grant.expiresAt)).toEqual({ ok: false, reason: "expired" });
    expect(new DownloadTokens(new Uint8Array(32).fill(2)).verify(token)).toEqual({ ok: false, reason: "invalid" });
    expect(tokens.verify(`${token}x`)).toEqual({ ok: false, reason: "invalid" });
    expect(tokens.verify("garbage")).toEqual({ ok: false, reason: "invalid" });
  });
});
