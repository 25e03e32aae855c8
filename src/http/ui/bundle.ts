/**
 * Bun macros (imported `with { type: "macro" }`): they run when the importing module is
 * bundled or transpiled, so `bun build --compile` bakes the dashboard's script and styles
 * into the binary, and `bun src/main.ts` builds them the first time /ui/ is asked for. The
 * browser code is bundled with the `bun build` CLI because a macro may not call Bun.build.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const UI_DIR = join(import.meta.dir, "..", "..", "ui");

/** src/ui/main.ts and what it imports (uPlot, croner), as one minified ES module. */
export function uiScript(): string {
  const build = Bun.spawnSync([process.execPath, "build", join(UI_DIR, "main.ts"), "--target=browser", "--format=esm", "--minify"], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, BUN_BE_BUN: "1" },
  });
  if (build.exitCode !== 0) throw new Error(`bundling the dashboard failed: ${build.stderr.toString()}`);
  return build.stdout.toString();
}

/** uPlot's stylesheet, then ours. */
export function uiStyles(): string {
  const uplot = readFileSync(Bun.resolveSync("uplot/dist/uPlot.min.css", UI_DIR), "utf8");
  return `${uplot}\n${readFileSync(join(UI_DIR, "style.css"), "utf8")}`;
}
