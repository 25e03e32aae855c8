/**
 * Restore throughput: a snapdb backup (zstd 3; once without and once with age) of the
 * benchmark database restored through `POST /restores` into a new database, against
 * `zstd -d < file | pg_restore` of the very same file with the same pg_restore flags.
 *
 *   node_modules/.bin/bun bench/restore-throughput.ts [--sizes 0.5] [--runs 3]
 */
import { parseArgs } from "node:util";
import { startPostgres } from "../test/helpers/postgres.ts";
import { appendResults, cleanupStack, cpuOf, daemonWithPgSource, load, median, mmm, resetPeak, rssSampler, sh } from "./lib.ts";
import { dbBytes, growTo } from "./pg-data.ts";

const { values } = parseArgs({ options: { sizes: { type: "string", default: "0.5" }, runs: { type: "string", default: "3" } } });
const SIZES = values.sizes!.split(",").map(Number);
const RUNS = Math.max(3, Math.min(10, Number(values.runs)));
const TERMINAL = ["succeeded", "failed", "canceled"];
const cleanup = cleanupStack();

try {
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  pg.psql("ALTER ROLE snapdb_test CREATEDB;");
  const { d, api, managed, source } = await daemonWithPgSource(pg, cleanup);
  const policy = async (name: string, encrypt: boolean) =>
    (
      await api("POST", "/backup-policies", {
        name,
        scheduleCron: "0 3 1 1 *",
        timezone: "UTC",
        destinationId: managed.id,
        retention: { keepLast: 10 },
        compression: { algorithm: "zstd", level: 3 },
        encryption: { enabled: encrypt, recipients: [] },
        timeoutSeconds: 3600,
        retries: 0,
      })
    ).id as string;
  const plain = await policy("zstd", false);
  const aged = await policy("zstd-age", true);
  const until = async (path: string) => {
    let row = await api("GET", path);
    for (const end = Date.now() + 3_600_000; !TERMINAL.includes(row.status) && Date.now() < end; ) {
      await Bun.sleep(50);
      row = await api("GET", path);
    }
    if (row.status !== "succeeded") throw new Error(`${path} ${row.status}: ${JSON.stringify(row.error)}`);
    return row;
  };
  const backup = async (policyId: string) => until(`/backup-jobs/${(await api("POST", "/backup-jobs/run-now", { dataSourceId: source.id, policyId })).id}`);
  const pgEnv = { PGPASSWORD: pg.password };
  const conn = `--no-password --host=${pg.host} --port=${pg.port} --username=${pg.user}`;
  let n = 0;
  const dropAll = () => {
    const names = pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'restore_%';").trim().split("\n").filter(Boolean);
    for (const name of names) pg.psql(`DROP DATABASE ${name};`);
  };

  const sections: string[] = [];
  const state = { rows: 0 };
  for (const sizeGb of SIZES) {
    const gen = growTo(pg, sizeGb * 1e9, state);
    const job = await backup(plain);
    const jobAge = await backup(aged);
    const file = sh(`find ${d.dataDir}/managed -name '${job.id}.*'`).trim();
    if (!file) throw new Error("backup file not found under the managed dir");
    const times: Record<string, number[]> = { baseline: [], snapdb: [], snapdbAge: [] };
    const cpu: Record<string, number[]> = { baseline: [], snapdb: [], snapdbAge: [] };
    const peaks: number[] = [];
    const viaSnapdb = async (backupJobId: string, key: string) => {
      resetPeak(d.pid);
      const s = rssSampler(d.pid, 100);
      const c0 = cpuOf(d.pid);
      const t0 = performance.now();
      const r = await api("POST", "/restores", { backupJobId, targetDatabase: `restore_${++n}` });
      await until(`/restores/${r.id}`);
      times[key]!.push((performance.now() - t0) / 1000);
      const c1 = cpuOf(d.pid);
      cpu[key]!.push(c1.self - c0.self + c1.children - c0.children);
      const m = s.stop();
      peaks.push(Math.max(m.hwm, m.maxRss));
    };
    for (let r = 0; r < RUNS; r++) {
      const db = `restore_${++n}`;
      pg.psql(`CREATE DATABASE ${db} OWNER snapdb_test;`);
      const c0 = cpuOf("self");
      const t0 = performance.now();
      sh(`set -o pipefail; zstd -d -q < ${file} | ${pg.binDir}/pg_restore --no-owner --no-privileges --exit-on-error --single-transaction ${conn} --dbname=${db}`, { env: pgEnv });
      times.baseline!.push((performance.now() - t0) / 1000);
      cpu.baseline!.push(cpuOf("self").children - c0.children);
      await viaSnapdb(job.id, "snapdb");
      await viaSnapdb(jobAge.id, "snapdbAge");
      console.log(
        `[${sizeGb} GB run ${r + 1}] baseline ${times.baseline!.at(-1)!.toFixed(2)} s, snapdb ${times.snapdb!.at(-1)!.toFixed(2)} s, snapdb+age ${times.snapdbAge!.at(-1)!.toFixed(2)} s (load ${load()})`,
      );
      dropAll();
    }
    const mb = job.sizeBytes / 1e6;
    const row = (name: string, key: string) =>
      `| ${name} | ${mmm(times[key]!, (x) => x.toFixed(2))} | ${mmm(
        times[key]!.map((s) => mb / s),
        (x) => x.toFixed(0),
      )} | ${median(cpu[key]!).toFixed(2)} |`;
    sections.push(`### ${sizeGb} GB target: database ${(dbBytes(pg) / 1e9).toFixed(2)} GB, dump ${mb.toFixed(0)} MB, stored ${(job.storedBytes / 1e6).toFixed(0)} MB (generated in ${gen.toFixed(0)} s)

| what | seconds, median (min–max) of ${RUNS} | MB/s of dump bytes | CPU s (snapdb + tools, median) |
|---|---|---|---|
${row("baseline: zstd -d < file \\| pg_restore --single-transaction …", "baseline")}
${row("snapdb POST /restores (zstd 3)", "snapdb")}
${row("snapdb POST /restores (zstd 3 + age)", "snapdbAge")}

Ratio snapdb / baseline (median seconds): ${(median(times.snapdb!) / median(times.baseline!)).toFixed(2)} (with age ${(median(times.snapdbAge!) / median(times.baseline!)).toFixed(2)}). Both restore into a new empty database with the same pg_restore flags (snapdb's: --no-owner --no-privileges --exit-on-error --single-transaction); snapdb's time runs from POST to the poll that sees it succeeded and includes creating the database and checking the file's sha256. Daemon peak RSS during the restores: ${mmm(peaks, (x) => x.toFixed(0))} MiB.
`);
  }
  appendResults("Restore throughput (bench/restore-throughput.ts)", sections.join("\n"));
} finally {
  await cleanup.run();
}
process.exit(0);
