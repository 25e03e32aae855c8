import { expect, test } from "bun:test";
import { join } from "node:path";

/**
 * Biome finds nothing: its linter (biome.json: the recommended rules, minus the house style's
 * exceptions) and its formatter (every file as `biome format --write` leaves it).
 */
test("biome check (lint and format) passes", () => {
  const root = join(import.meta.dir, "..", "..");
  const lint = Bun.spawnSync([join(root, "node_modules", ".bin", "biome"), "check", "--max-diagnostics=50"], { cwd: root, stdout: "pipe", stderr: "pipe" });
  expect({ code: lint.exitCode, out: lint.exitCode === 0 ? "" : lint.stdout.toString() + lint.stderr.toString() }).toEqual({ code: 0, out: "" });
}, 60_000);
