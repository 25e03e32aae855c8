import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
const tsc = (project: string) => Bun.spawnSync([join(root, "node_modules", ".bin", "tsc"), "--noEmit", "-p", project], { cwd: root, stdout: "pipe", stderr: "pipe" });

/** The whole tree (src, test, scripts, bench) typechecks under strict settings. */
test("tsc --noEmit passes", () => {
  const r = tsc(root);
  expect(r.stdout.toString() + r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
}, 120_000);

/** The dashboard's browser code is its own program (DOM types instead of Bun's). */
test("tsc --noEmit -p src/ui passes", () => {
  const r = tsc(join(root, "src", "ui"));
  expect(r.stdout.toString() + r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
}, 120_000);
