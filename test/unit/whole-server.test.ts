import { describe, expect, test } from "bun:test";
import { excludedBy, partFileName } from "../../src/engines/whole-server.ts";
import { backupObjectKey, folderOf, isFolderKey } from "../../src/storage/keys.ts";

describe("excludeDatabases globs", () => {
  test("* and ? are wildcards, every other character is literal, the whole name must match", () => {
    const ex = excludedBy(["tmp_*", "db?", "a.b", "we-ird (x)", "[x]+", "^$|\\/", "ü*"]);
    for (const name of ["tmp_", "tmp_1", "tmp_a b", "db1", "dbx", "a.b", "we-ird (x)", "[x]+", "^$|\\/", "über"]) expect({ name, out: ex(name) }).toEqual({ name, out: true });
    for (const name of ["tmp", "xtmp_1", "db", "db12", "aXb", "we-ird x", "x", "[x]]", "u"]) expect({ name, out: ex(name) }).toEqual({ name, out: false });
    expect(excludedBy([])("anything")).toBe(false);
    expect(excludedBy(["*"])("")).toBe(true);
    // Case-sensitive, like PostgreSQL's names.
    expect(excludedBy(["Sales"])("sales")).toBe(false);
  });
});

describe("part file names and keys", () => {
  test("plain names stay readable, others are encoded, never colliding or escaping the folder", () => {
    expect(partFileName({ name: "x", kind: "globals" })).toBe("globals");
    expect(partFileName({ name: "globals", kind: "database" })).toBe("db-globals");
    expect(partFileName({ name: "app_db-1", kind: "database" })).toBe("db-app_db-1");
    for (const name of ["../etc", "a/b", "my db", "dbname=x", "ü", ".", "x.y"]) {
      const file = partFileName({ name, kind: "database" });
      expect(file).toMatch(/^dbx-[A-Za-z0-9_-]+$/);
      expect(Buffer.from(file.slice(4), "base64url").toString("utf8")).toBe(name);
    }
    const key = backupObjectKey({ prefix: "p", orgId: "org", dataSourceId: "ds_1", jobId: "job_1", ext: "dump.zst", at: new Date("2026-01-02T00:00:00Z"), part: "db-app" });
    expect(key).toBe("p/org/ds_1/2026/01/02/job_1/db-app.dump.zst");
    expect(folderOf(key)).toBe("p/org/ds_1/2026/01/02/job_1/");
    expect(isFolderKey(folderOf(key))).toBe(true);
    expect(isFolderKey(key)).toBe(false);
  });
});
