import { expect, test } from "bun:test";
import { join } from "node:path";

/** Biome's linter (biome.json: its recommended rules, minus the house style's exceptions) finds nothing. */
test("biome lint passes", () => {
  const root = join(import.meta.dir, "..", "..");
  const lint = Bun.spawnSync([join(root, "node_modules", ".bin", "biome"), "lint", "--max-diagnostics=50"], { cwd: root, stdout: "pipe", stderr: "pipe" });
  expect({ code: lint.exitCode, out: lint.exitCode === 0 ? "" : lint.stdout.toString() + lint.stderr.toString() }).toEqual({ code: 0, out: "" });
}, 60_000);
