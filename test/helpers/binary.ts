import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
export const BINARY = join(ROOT, "dist", "snapdb");

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/** The compiled binary, rebuilt with `npm run build` when any source is newer than it. */
export function ensureBinary(): string {
  const sources = Math.max(newestSource(join(ROOT, "src")), newestSource(join(ROOT, "migrations")), statSync(join(ROOT, "package.json")).mtimeMs);
  if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < sources) {
    const build = Bun.spawnSync(["npm", "run", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    if (build.exitCode !== 0) throw new Error(`npm run build failed:\n${build.stderr.toString()}`);
  }
  return BINARY;
}
