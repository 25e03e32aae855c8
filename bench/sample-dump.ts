/**
 * Writes a pg_dump -Fc -Z0 file of the benchmark data (for bench/stages.ts and zstd-chunks.ts):
 *
 *   node_modules/.bin/bun bench/sample-dump.ts OUT.dump [sizeGB=0.5]
 */
import { startPostgres } from "../test/helpers/postgres.ts";
import { sh } from "./lib.ts";
import { growTo } from "./pg-data.ts";

const [out, size] = process.argv.slice(2);
if (!out) throw new Error("usage: bun bench/sample-dump.ts OUT.dump [sizeGB]");
const pg = await startPostgres();
try {
  growTo(pg, Number(size ?? 0.5) * 1e9, { rows: 0 });
  sh(`${pg.binDir}/pg_dump -Fc -Z0 -h ${pg.host} -p ${pg.port} -U ${pg.user} -d ${pg.database} > ${out}`, { env: { PGPASSWORD: pg.password } });
} finally {
  await pg.stop();
}
