/**
 * Whole-server backups (`database: "*"`): is `runner.partsConcurrency = 2` worth it? One
 * PostgreSQL server with three databases of about the same size (~200 MB on disk each by
 * default), backed up as a whole server (globals + 3 databases, zstd 3 + age, to the local
 * managed destination) by two daemons that differ only in SNAPDB_RUNNER_PARTS_CONCURRENCY
 * (1 and 2), in alternating rounds, so load from elsewhere on the machine weighs on both.
 * Reports the job's own seconds (startedAt → finishedAt) and wall seconds (request → end),
 * dump MB/s, the CPU of the daemon and of its tools, and the daemon's peak RSS.
 *
 *   node_modules/.bin/bun bench/whole-server.ts [--mb 200] [--rounds 5]
 */
import { parseArgs } from "node:util";
import { startPostgres } from "../test/helpers/postgres.ts";
import { apiOf, appendResults, cleanupStack, daemon, load, mmm } from "./lib.ts";
import { dbBytes, growTo } from "./pg-data.ts";
import { runJob, type JobRun } from "./run-job.ts";

const { values } = parseArgs({ options: { mb: { type: "string", default: "200" }, rounds: { type: "string", default: "5" } } });
const TARGET = Number(values.mb) * 1e6;
const ROUNDS = Math.max(3, Math.min(15, Number(values.rounds)));
const DATABASES = ["bench_a", "bench_b", "bench_c"];
const MB = 1e6;

const cleanup = cleanupStack();
try {
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  pg.psql(DATABASES.map((d) => `CREATE DATABASE ${d} OWNER ${pg.user};`).join("\n"));
  let genSeconds = 0;
  for (const d of DATABASES) genSeconds += growTo(pg, TARGET, { rows: 0 }, d, 100_000);
  const sizes = DATABASES.map((d) => dbBytes(pg, d) / MB);
  console.log(`databases ${sizes.map((s) => s.toFixed(0)).join(" / ")} MB on disk, generated in ${genSeconds.toFixed(0)} s`);

  const setups: { parts: number; d: Awaited<ReturnType<typeof daemon>>; api: ReturnType<typeof apiOf>; sourceId: string; policyId: string }[] = [];
  for (const parts of [1, 2]) {
    const d = await daemon({ env: { SNAPDB_RUNNER_MAX_CONCURRENT: "2", SNAPDB_RUNNER_PARTS_CONCURRENCY: String(parts) } });
    cleanup.push(() => d.stop());
    const api = apiOf(d, await d.token("org_bench"));
    const managed = await api("POST", "/storage-destinations/managed/ensure");
    const source = await api("POST", "/data-sources", {
      name: "bench-server",
      engine: "postgres",
      host: pg.host,
      port: pg.port,
      database: "*",
      excludeDatabases: ["appdb", "postgres"],
    });
    await api("PUT", `/data-sources/${source.id}/credentials`, { username: pg.user, password: pg.password });
    const policy = await api("POST", "/backup-policies", {
      name: "server-zstd-age",
      scheduleCron: "0 3 1 1 *",
      timezone: "UTC",
      destinationId: managed.id,
      retention: { keepLast: 1 },
      compression: { algorithm: "zstd", level: 3 },
      encryption: { enabled: true, recipients: [] },
      timeoutSeconds: 3600,
      retries: 0,
    });
    setups.push({ parts, d, api, sourceId: source.id, policyId: policy.id });
  }

  const runs = new Map<number, JobRun[]>([[1, []], [2, []]]);
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? setups : [...setups].reverse();
    for (const s of order) {
      const run = await runJob(s.d, s.api, s.sourceId, s.policyId);
      runs.get(s.parts)!.push(run);
      console.log(`[round ${r + 1}/${ROUNDS}] partsConcurrency ${s.parts}: job ${run.jobSeconds.toFixed(2)} s, wall ${run.seconds.toFixed(2)} s, ${(run.sizeBytes / MB).toFixed(0)} MB dumped (load ${load()})`);
    }
  }

  const row = (parts: number) => {
    const xs = runs.get(parts)!;
    const dump = xs[0]!.sizeBytes;
    return `| ${parts} | ${mmm(xs.map((x) => x.jobSeconds), (n) => n.toFixed(2))} | ${mmm(xs.map((x) => x.seconds), (n) => n.toFixed(2))} | ${mmm(xs.map((x) => dump / MB / x.jobSeconds), (n) => n.toFixed(0))} | ${mmm(xs.map((x) => x.cpu.self), (n) => n.toFixed(2))} + ${mmm(xs.map((x) => x.cpu.children), (n) => n.toFixed(2))} | ${mmm(xs.map((x) => x.peakMiB), (n) => n.toFixed(0))} |`;
  };
  const ratios = runs.get(2)!.map((x, i) => x.jobSeconds / runs.get(1)![i]!.jobSeconds);
  const dumpMb = runs.get(1)![0]!.sizeBytes / MB;
  appendResults(
    "Whole-server backup, partsConcurrency 1 vs 2 (bench/whole-server.ts)",
    `One PostgreSQL 15 server, three databases of ${sizes.map((s) => s.toFixed(0)).join(" / ")} MB on disk (bench/pg-data.ts rows), backed up as \`database: "*"\` (globals + 3 databases; appdb and postgres excluded): ${dumpMb.toFixed(0)} MB of dump in all, zstd 3 + age, to the local managed destination. Two daemons differing only in \`SNAPDB_RUNNER_PARTS_CONCURRENCY\`, ${ROUNDS} alternating rounds.

| partsConcurrency | job seconds, median (min–max) | wall seconds (request → finishedAt) | dump MB/s (job) | CPU s: daemon + tools | daemon peak RSS MiB |
|---|---|---|---|---|---|
${row(1)}
${row(2)}

Per-round ratio of job seconds (2 ÷ 1): median ${mmm(ratios, (n) => n.toFixed(2))}.`,
  );
} finally {
  await cleanup.run();
}
