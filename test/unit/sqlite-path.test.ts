import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Database } from "bun:sqlite";
import { checkSqlitePath, pinSqlitePath, rootsFor, SQLITE_READONLY_NOFOLLOW, type SqlitePathPolicy } from "../../src/engines/sqlite-path.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * The SQLite host boundary's rules on real files: per-organisation roots, directories others
 * may write to, hard links, the held directory, and what SQLite does with NOFOLLOW.
 */

const dir = tempDir("snapdb-sqlite-path");
afterAll(() => dir.cleanup());
const policy = (roots: string[]): SqlitePathPolicy => ({ roots, reservedDirs: [join(dir.path, "data")], reservedFiles: [join(dir.path, "data", "master.key")] });

function db(path: string, table = "t"): string {
  const d = new Database(path);
  d.run(`CREATE TABLE ${table} (x)`);
  d.close();
  return path;
}

describe("{orgId} roots", () => {
  test("a root with {orgId} is the calling organisation's; one without is everybody's", () => {
    const p = policy(["/srv/sqlite/{orgId}", "/srv/shared"]);
    expect(rootsFor(p, "org_a")).toEqual(["/srv/sqlite/org_a", "/srv/shared"]);
    for (const bad of ["", ".", "..", "a/b", "../org_a", "a\0b"]) expect(rootsFor(p, bad)).toEqual(["/srv/shared"]);
  });

  test("org B cannot name a file under org A's root; an org id that is not one segment gets none", () => {
    const base = join(dir.path, "orgs");
    mkdirSync(join(base, "org_a"), { recursive: true });
    const file = db(join(base, "org_a", "app.db"));
    const p = policy([join(base, "{orgId}")]);
    expect(checkSqlitePath(file, p, "org_a")).toEqual({ ok: true, real: file });
    expect(checkSqlitePath(file, p, "org_b")).toMatchObject({ ok: false, reason: expect.stringContaining("not under a directory") });
    expect(checkSqlitePath(file, p, "org_b/../org_a")).toMatchObject({ ok: false, reason: expect.stringContaining("{orgId}") });
  });
});

describe("what a user who can write in the root could swap", () => {
  const root = join(dir.path, "root");
  mkdirSync(join(root, "app"), { recursive: true });

  test("below a directory others may write to: refused; directly in it: allowed", () => {
    const nested = db(join(root, "app", "nested.db"));
    const top = db(join(root, "top.db"));
    chmodSync(root, 0o777);
    try {
      expect(checkSqlitePath(nested, policy([root]), "o")).toMatchObject({ ok: false, reason: expect.stringContaining("could swap") });
      expect(checkSqlitePath(top, policy([root]), "o")).toEqual({ ok: true, real: top });
    } finally {
      chmodSync(root, 0o700);
    }
    expect(checkSqlitePath(nested, policy([root]), "o")).toEqual({ ok: true, real: nested });
  });

  test("a hard link, and a symlinked -wal, are refused", () => {
    const original = db(join(root, "original.db"));
    linkSync(original, join(root, "linked.db"));
    expect(checkSqlitePath(join(root, "linked.db"), policy([root]), "o")).toMatchObject({ ok: false, reason: expect.stringContaining("hard link") });
    const withWal = db(join(root, "wal.db"));
    symlinkSync(join(root, "elsewhere-wal"), `${withWal}-wal`);
    expect(checkSqlitePath(withWal, policy([root]), "o")).toMatchObject({ ok: false, reason: expect.stringContaining("-wal") });
  });
});

describe("the held directory", () => {
  test("the daemon's own writes land in the directory that was checked, and a recheck sees it moved", () => {
    const root = join(dir.path, "held");
    mkdirSync(join(root, "app"), { recursive: true });
    const file = db(join(root, "app", "x.db"));
    const pinned = pinSqlitePath(file, policy([root]), "o");
    if (!pinned.ok) throw new Error(pinned.reason);
    using pin = pinned.pin;
    expect(pin.recheck()).toBeNull();
    // Moved away and replaced: the descriptor still leads to the checked directory.
    renameSync(join(root, "app"), join(root, "moved"));
    mkdirSync(join(root, "app"));
    writeFileSync(pin.at("note"), "held");
    expect(readFileSync(join(root, "moved", "note"), "utf8")).toBe("held");
    expect(pin.recheck()).toContain("changed while it was being checked");
  });

  test("SQLite with NOFOLLOW refuses a symlink as the file, and SQLite refuses symlinked -wal/-shm on its own", () => {
    const root = join(dir.path, "nofollow");
    mkdirSync(root);
    const secret = db(join(root, "secret.db"), "secret");
    symlinkSync(secret, join(root, "link.db"));
    expect(() => new Database(join(root, "link.db"), SQLITE_READONLY_NOFOLLOW)).toThrow();
    // Without the flag SQLite follows it: this is what the flag is for.
    const followed = new Database(join(root, "link.db"), { readonly: true });
    expect(followed.query("SELECT name FROM sqlite_master").get()).toEqual({ name: "secret" });
    followed.close();
    // A WAL-mode file whose -wal, then -shm, is a symlink to another database's (kept open, so both exist).
    const other = new Database(join(root, "other.db"));
    other.run("PRAGMA journal_mode = WAL");
    other.run("CREATE TABLE other_secret (x)");
    const legit = new Database(join(root, "legit.db"));
    legit.run("PRAGMA journal_mode = WAL");
    legit.run("CREATE TABLE legit (x)");
    legit.close();
    for (const suffix of ["-wal", "-shm"]) {
      symlinkSync(join(root, `other.db${suffix}`), join(root, `legit.db${suffix}`));
      expect(() => new Database(join(root, "legit.db"), SQLITE_READONLY_NOFOLLOW).query("SELECT name FROM sqlite_master").all()).toThrow();
      rmSync(join(root, `legit.db${suffix}`));
    }
    other.close();
  });
});
