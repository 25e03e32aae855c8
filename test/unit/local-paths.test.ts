import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { realPathOf, swappableOnTheWay } from "../../src/lib/host-paths.ts";
import { checkLocalRoot } from "../../src/storage/local-paths.ts";
import { LocalDriver } from "../../src/storage/local.ts";
import { tempDir } from "../helpers/tmp.ts";

const tmp = tempDir("snapdb-local-paths");
afterAll(() => tmp.cleanup());
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

let n = 0;
/** A fresh allowed root (0700, ours) with `dest` below it. */
function layout() {
  const root = join(tmp.path, `root${n++}`);
  mkdirSync(root, { mode: 0o700 });
  return { root, real: realPathOf(root)! };
}

const body = (text: string) => new Blob([text]).stream();
const KEY = "org_a/ds_1/2025/01/02/job.dump";

describe("the layout rule of a tenant's local destination", () => {
  test("every directory from the allowed root down to the destination, both included, must be the daemon's alone", () => {
    const { root, real } = layout();
    const dest = join(root, "team", "nightly");
    mkdirSync(dest, { recursive: true, mode: 0o700 });
    expect(checkLocalRoot(dest, [root])).toEqual({ ok: true, real: join(real, "team", "nightly") });
    // Not yet there: fine (the daemon makes the rest, 0700).
    expect(checkLocalRoot(join(dest, "later"), [root])).toMatchObject({ ok: true });

    for (const [dir, mode] of [
      [root, 0o777],
      [join(root, "team"), 0o775],
      [dest, 0o702],
    ] as const) {
      chmodSync(dir, mode);
      const check = checkLocalRoot(dest, [root]);
      expect(check.ok).toBe(false);
      const reason = check.ok ? "" : check.reason;
      expect(reason).toContain(`${realPathOf(dir)} is not the daemon's alone (its mode 0${mode.toString(8)}`);
      expect(reason).toContain("writable only by the daemon's user");
      expect("outside" in check).toBe(false);
      chmodSync(dir, 0o700);
    }
    expect(checkLocalRoot(dest, [root]).ok).toBe(true);
  });

  test.skipIf(!asRoot)("a directory on the way that belongs to another user is refused, even 0700", () => {
    const { root } = layout();
    const dest = join(root, "theirs", "dest");
    mkdirSync(dest, { recursive: true, mode: 0o700 });
    chownSync(join(root, "theirs"), NOBODY, NOBODY);
    expect(checkLocalRoot(dest, [root])).toMatchObject({ ok: false, reason: expect.stringContaining(`belongs to uid ${NOBODY}`) });
  });

  test("outside every allowed root is marked so (callers word it); a symlink inside the root gives the real path", () => {
    const { root, real } = layout();
    const other = layout();
    expect(checkLocalRoot(join(other.root, "x"), [root])).toMatchObject({ ok: false, outside: true });
    mkdirSync(join(root, "target"), { mode: 0o700 });
    symlinkSync(join(root, "target"), join(root, "alias"));
    expect(checkLocalRoot(join(root, "alias"), [root])).toEqual({ ok: true, real: join(real, "target") });
    symlinkSync(other.root, join(root, "out"));
    expect(checkLocalRoot(join(root, "out"), [root])).toMatchObject({ ok: false, outside: true });
  });

  test("swappableOnTheWay: the holders of the names on the way, and the last directory too when asked", () => {
    const { real } = layout();
    mkdirSync(join(real, "a", "b"), { recursive: true, mode: 0o700 });
    chmodSync(join(real, "a", "b"), 0o777);
    expect(swappableOnTheWay(real, join(real, "a", "b"))).toBeNull();
    expect(swappableOnTheWay(real, join(real, "a", "b"), true)).toMatchObject({ holder: join(real, "a", "b"), part: null });
    chmodSync(join(real, "a"), 0o777);
    expect(swappableOnTheWay(real, join(real, "a", "b"))).toMatchObject({ holder: join(real, "a"), part: "b" });
  });
});

describe("the local driver keeps the rule at every operation", () => {
  test("the directories it makes below the root are 0700; an existing one others may write to is refused, for writes and reads", async () => {
    const { root } = layout();
    const dest = join(root, "dest");
    const driver = new LocalDriver({ root: dest, allowedRoots: [root] });
    await driver.put(KEY, body("one"));
    for (const dir of ["", "org_a", "org_a/ds_1", "org_a/ds_1/2025", "org_a/ds_1/2025/01", "org_a/ds_1/2025/01/02"]) {
      expect({ dir, mode: statSync(join(dest, dir)).mode & 0o777 }).toEqual({ dir, mode: 0o700 });
    }

    // A date directory handed to others: every operation below it is refused, naming why.
    const day = join(dest, "org_a/ds_1/2025/01");
    chmodSync(day, 0o777);
    const denied = { code: "ACCESS_DENIED", message: expect.stringContaining(`${realPathOf(day)} is not the daemon's alone (its mode 0777`) };
    await expect(driver.put("org_a/ds_1/2025/01/03/job.dump", body("two"))).rejects.toMatchObject(denied);
    await expect(driver.put(KEY.replace("job", "job2"), body("two"))).rejects.toMatchObject(denied);
    await expect(driver.get(KEY)).rejects.toMatchObject(denied);
    await expect(driver.head(KEY)).rejects.toMatchObject(denied);
    await expect(driver.delete(KEY)).rejects.toMatchObject(denied);
    await expect(driver.cleanupUpload(KEY)).rejects.toMatchObject(denied);
    await expect(Array.fromAsync(driver.list("org_a/"))).rejects.toMatchObject(denied);
    expect(existsSync(join(dest, KEY))).toBe(true);
    expect(readdirSync(day)).toEqual(["02"]);

    // Put right, it works again.
    chmodSync(day, 0o700);
    expect((await driver.get(KEY)).size).toBe(3);
    expect((await Array.fromAsync(driver.list("org_a/"))).map((o) => o.key)).toEqual([KEY]);

    // The destination's own directory (or one above it) too.
    chmodSync(dest, 0o770);
    await expect(driver.put(KEY, body("three"))).rejects.toMatchObject({ code: "ACCESS_DENIED", message: expect.stringContaining("writable only by the daemon's user") });
    chmodSync(dest, 0o700);
    chmodSync(root, 0o757);
    await expect(driver.get(KEY)).rejects.toMatchObject({ code: "ACCESS_DENIED" });
    chmodSync(root, 0o700);
    await driver.delete(KEY);
    expect(existsSync(join(dest, "org_a"))).toBe(false);
  });

  test.skipIf(!asRoot)("an existing directory below the root that belongs to another user is refused, not written through", async () => {
    const { root } = layout();
    const dest = join(root, "dest");
    mkdirSync(join(dest, "org_a", "ds_1"), { recursive: true, mode: 0o700 });
    chownSync(join(dest, "org_a", "ds_1"), NOBODY, NOBODY);
    const driver = new LocalDriver({ root: dest, allowedRoots: [root] });
    await expect(driver.put(KEY, body("x"))).rejects.toMatchObject({ code: "ACCESS_DENIED", message: expect.stringContaining(`belongs to uid ${NOBODY}`) });
    expect(readdirSync(join(dest, "org_a", "ds_1"))).toEqual([]);
  });

  test("the managed destination (no allowed roots: the operator's) is not held to the rule", async () => {
    const { root } = layout();
    chmodSync(root, 0o777);
    mkdirSync(join(root, "org_a"), { mode: 0o777 });
    writeFileSync(join(root, "marker"), "");
    const driver = new LocalDriver({ root });
    await driver.put(KEY, body("managed"));
    expect((await driver.head(KEY))?.size).toBe(7);
    chmodSync(root, 0o700);
  });
});
