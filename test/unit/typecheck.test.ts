import { expect, test } from "bun:test";
import { join } from "node:path";

/** The whole tree (src, test, scripts, bench) typechecks under strict settings. */
test("tsc --noEmit passes", () => {
  const root = join(import.meta.dir, "..", "..");
  const tsc = Bun.spawnSync([join(root, "node_modules", ".bin", "tsc"), "--noEmit", "-p", root], { cwd: root, stdout: "pipe", stderr: "pipe" });
  expect(tsc.stdout.toString() + tsc.stderr.toString()).toBe("");
  expect(tsc.exitCode).toBe(0);
}, 120_000);
