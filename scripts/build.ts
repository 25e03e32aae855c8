/**
 * `npm run build`: one self-contained executable, dist/snapdb, with the migrations and the
 * Swagger UI assets embedded. `--target` may name another Bun target (e.g. bun-linux-arm64).
 */
import { mkdirSync } from "node:fs";

const target = process.argv.find((a) => a.startsWith("--target="))?.slice("--target=".length);
const outfile = process.argv.find((a) => a.startsWith("--outfile="))?.slice("--outfile=".length) ?? "dist/snapdb";
mkdirSync("dist", { recursive: true });
const result = await Bun.build({
  // The SQLite snapshot worker is a second entrypoint: inside the binary it is `./engines/sqlite-snapshot-worker.ts`
  // (relative to src/, the entrypoints' common root; see snapshotWorkerSpecifier).
  entrypoints: ["src/main.ts", "src/engines/sqlite-snapshot-worker.ts"],
  compile: { outfile, ...(target ? { target: target as Bun.Build.CompileTarget } : {}) },
  minify: true,
  bytecode: true,
  sourcemap: "linked",
  define: { "process.env.NODE_ENV": '"production"' },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile}`);
