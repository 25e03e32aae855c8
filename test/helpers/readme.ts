import { readFileSync } from "node:fs";
import { join } from "node:path";

const REPO_ROOT = join(import.meta.dir, "..", "..");

/** Every `sh` block of README.md under `## heading` (up to the next `## `), in order. */
export function shBlocksUnder(heading: string): string[] {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const section = readme.split(`\n## ${heading}\n`)[1]?.split("\n## ")[0];
  if (section === undefined) throw new Error(`README.md has no section '## ${heading}'`);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/**
 * The README's by-hand restore of a whole-server backup, as its commands: the block of
 * "Restoring by hand, without snapdb" that restores `globals.sql…`, split at its
 * `# PostgreSQL` and `# MySQL/MariaDB` comments; comment lines dropped, each command a line.
 */
export function wholeServerRestoreCommands(): { postgres: string[]; mysql: string[] } {
  const block = shBlocksUnder("Restoring by hand, without snapdb").find((b) => b.includes("globals.sql"));
  if (!block) throw new Error("README.md shows no by-hand restore of a whole-server backup");
  const out = { postgres: [] as string[], mysql: [] as string[] };
  let into: string[] | null = null;
  for (const line of block.split("\n")) {
    if (line.startsWith("# PostgreSQL")) into = out.postgres;
    else if (line.startsWith("# MySQL/MariaDB")) into = out.mysql;
    else if (line.trim() && !line.startsWith("#")) {
      if (!into) throw new Error(`README.md: a whole-server restore command before the engine comment: ${line}`);
      into.push(line);
    }
  }
  return out;
}

/**
 * Runs each command in bash (pipefail) in `cwd`, one after the other, with only `env`
 * (plus PATH): what a reader typing them would see, command by command.
 */
export function runCommands(commands: string[], cwd: string, env: Record<string, string>): { command: string; exitCode: number; stderr: string }[] {
  return commands.map((command) => {
    const r = Bun.spawnSync(["bash", "-o", "pipefail", "-c", command], { cwd, env, stdout: "pipe", stderr: "pipe" });
    return { command, exitCode: r.exitCode ?? -1, stderr: r.stderr.toString() };
  });
}
