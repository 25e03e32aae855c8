import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { isNormalizedAbsolute, isWithin, realPathOf, underAllowedRoot } from "../../src/lib/host-paths.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("snapdb-host-paths");
afterAll(() => dir.cleanup());

describe("host paths", () => {
  test("a missing tail is appended to the real path of its nearest existing ancestor", () => {
    mkdirSync(join(dir.path, "real"));
    symlinkSync(join(dir.path, "real"), join(dir.path, "link"));
    expect(realPathOf(join(dir.path, "link", "new", "x.db"))).toBe(join(realPathOf(dir.path)!, "real", "new", "x.db"));
  });

  test("a dangling symlink (or one under it) resolves to nothing: where it leads is unknown", () => {
    symlinkSync(join(dir.path, "nowhere"), join(dir.path, "dangling"));
    expect(realPathOf(join(dir.path, "dangling"))).toBeNull();
    expect(realPathOf(join(dir.path, "dangling", "x.db"))).toBeNull();
    expect(underAllowedRoot(join(dir.path, "dangling"), [dir.path])).toBeNull();
  });

  test("within: the directory itself and below, not a sibling sharing a prefix; / holds everything", () => {
    expect(isWithin("/a/b", "/a/b")).toBe(true);
    expect(isWithin("/a/b/c", "/a/b")).toBe(true);
    expect(isWithin("/a/bc", "/a/b")).toBe(false);
    expect(isWithin("/a", "/")).toBe(true);
  });

  test("normalized absolute paths only", () => {
    expect(isNormalizedAbsolute("/a/b.db")).toBe(true);
    for (const p of ["a/b.db", "/a/../b.db", "/a/./b.db", "/a//b.db", "/a/b/", "/a/\0b"]) expect(isNormalizedAbsolute(p)).toBe(false);
  });
});
