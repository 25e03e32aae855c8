/**
 * Restore drills, measured in pairs: each round runs a snapdb drill (a restore plan in mode
 * `drill`, `POST /restore-plans/{id}/run-now`: the newest successful backup restored into a
 * scratch database `snapdb_drill_<id>`, every table's rows counted and compared with the
 * backup's fingerprint, the scratch dropped) and the same work by hand (`createdb`, then
 * `zstd -d < file | pg_restore …` with snapdb's pg_restore flags, or `age -d -i key file |
 * zstd -d | pg_restore …` for the encrypted backup, then `SELECT count(*)` of every table
 * compared with the same fingerprint, then `dropdb --force`), back to back in alternating
 * order. Reports the median of the per-round ratios next to the ratio of the medians, the
 * CPU of each side, the daemon's peak RSS, and where each side's time goes: the shell's
 * steps are timed one by one; snapdb's are read from outside (the restore's startedAt,
 * `verification.durationMs`, finishedAt, and the server-side start of the pg_restore and
 * of the counting sessions in the scratch database, sampled from pg_stat_activity).
 *
 *   node_modules/.bin/bun bench/drill.ts [--size 0.5] [--rounds 7] [--variants zstd,age]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { newAgeIdentity } from "../src/crypto/age.ts";
import { startPostgres } from "../test/helpers/postgres.ts";
import { appendResults, cleanupStack, cpuOf, daemonWithPgSource, load, median, mmm, resetPeak, rssSampler, sessionWatcher, sh } from "./lib.ts";
import { dbBytes, growTo } from "./pg-data.ts";

const { values } = parseArgs({
  options: { size: { type: "string", default: "0.5" }, rounds: { type: "string", default: "7" }, variants: { type: "string", default: "zstd,age" } },
});
const SIZE_GB = Number(values.size);
const ROUNDS = Math.max(3, Math.min(25, Number(values.rounds)));
type Variant = "zstd" | "age";
const VARIANTS = values.variants!.split(",").filter((v): v is Variant => v === "zstd" || v === "age");
if (!VARIANTS.length || !(SIZE_GB > 0)) throw new Error("--variants takes zstd and/or age; --size a positive number of GB");
const TERMINAL = ["succeeded", "failed", "canceled"];
const MB = 1e6;

const cleanup = cleanupStack();
const scratch = mkdtempSync(join(tmpdir(), "snapdb-bench-drill-"));
cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));

/** Seconds of each step of one drill; snapdb's are read from outside (see `snapdbDrill`). */
interface Steps {
  /** Up to the restore tool's connection: snapdb's request, queue, checks and CREATE DATABASE; the shell's `createdb`. */
  setup: number;
  /** pg_restore, until the counting starts. */
  restore: number;
  /** Listing the tables and counting their rows (and comparing with the fingerprint). */
  count: number;
  /** Dropping the scratch database (snapdb: and recording the run). */
  drop: number;
}

interface Run {
  seconds: number;
  /** CPU seconds: the daemon itself (0 for the shell), and the tools. */
  cpu: { self: number; tools: number };
  peakMiB: number;
  /** null when the sampler missed a session (a step shorter than its period). */
  steps: Steps | null;
}

try {
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  // The drill's target credentials create and drop the scratch database.
  pg.psql("ALTER ROLE snapdb_test CREATEDB;");
  const { d, api, managed, source } = await daemonWithPgSource(pg, cleanup);
  // A drill restores the newest backup of its data source: one data source per variant, both on appdb.
  const ageSource = await api("POST", "/data-sources", { name: "bench-pg-age", engine: "postgres", host: pg.host, port: pg.port, database: pg.database });
  await api("PUT", `/data-sources/${ageSource.id}/credentials`, { username: pg.user, password: pg.password });
  const sources: Record<Variant, string> = { zstd: source.id, age: ageSource.id };
  // The shell's key: the age backup is encrypted to it as well as to the org's own key.
  const key = await newAgeIdentity();
  const keyFile = join(scratch, "key.txt");
  writeFileSync(keyFile, `${key.identity}\n`, { mode: 0o600 });
  const policyOf = async (name: string, recipients: string[] | null) =>
    (
      await api("POST", "/backup-policies", {
        name,
        scheduleCron: "0 3 1 1 *",
        timezone: "UTC",
        destinationId: managed.id,
        retention: { keepLast: 10 },
        fingerprint: true,
        compression: { algorithm: "zstd", level: 3 },
        encryption: { enabled: recipients !== null, recipients: recipients ?? [] },
        timeoutSeconds: 3600,
        retries: 0,
      })
    ).id as string;
  const policies: Record<Variant, string> = { zstd: await policyOf("zstd-fingerprint", null), age: await policyOf("zstd-age-fingerprint", [key.recipient]) };
  const until = async (path: string, ms = 250) => {
    let row = await api("GET", path);
    for (const end = Date.now() + 3_600_000; !TERMINAL.includes(row.status) && Date.now() < end; ) {
      await Bun.sleep(ms);
      row = await api("GET", path);
    }
    if (row.status !== "succeeded") throw new Error(`${path} ${row.status}: ${JSON.stringify(row.error)}`);
    return row;
  };

  const genSeconds = growTo(pg, SIZE_GB * 1e9, { rows: 0 });
  const jobs: Record<string, any> = {};
  const files: Record<string, string> = {};
  const plans: Record<string, string> = {};
  for (const v of VARIANTS) {
    const queued = await api("POST", "/backup-jobs/run-now", { dataSourceId: sources[v], policyId: policies[v] });
    jobs[v] = await until(`/backup-jobs/${queued.id}`);
    if (!jobs[v].fingerprint) throw new Error(`backup ${queued.id} has no fingerprint`);
    files[v] = sh(`find ${d.dataDir}/managed -name '${queued.id}.*'`).trim();
    if (!files[v]) throw new Error("backup file not found under the managed dir");
    plans[v] = (
      await api("POST", "/restore-plans", {
        name: `drill-${v}`,
        dataSourceId: sources[v],
        mode: "drill",
        scheduleCron: "0 4 1 1 *",
        enabled: false,
        target: { dataSourceId: sources[v] },
      })
    ).id;
  }
  const fingerprint = jobs[VARIANTS[0]!].fingerprint.tables as Record<string, number>;
  const totalRows = Object.values(fingerprint).reduce((a, b) => a + b, 0);

  const pgEnv = { PGPASSWORD: pg.password };
  const conn = `--no-password --host=${pg.host} --port=${pg.port} --username=${pg.user}`;
  const flags = "--no-owner --no-privileges --exit-on-error --single-transaction";
  // Every ordinary table outside the system schemas, counted in one psql session.
  const countSql = join(scratch, "count.sql");
  writeFileSync(
    countSql,
    `SELECT format('SELECT %L, count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1 \\gexec\n`,
  );
  // Sessions in the drills' databases: when the restore tool connected, and when the first other session (the counting) did.
  const watcher = sessionWatcher(pg, "datname LIKE 'snapdb\\_drill\\_%' OR datname LIKE 'shell\\_drill\\_%'");
  cleanup.push(() => watcher.stop());
  const firstOf = (xs: number[]) => (xs.length ? Math.min(...xs) : null);
  const seenIn = (datname: string) => {
    const ss = watcher.sessions().filter((s) => s.datname === datname);
    return { restore: firstOf(ss.filter((s) => s.app === "pg_restore").map((s) => s.started)), count: firstOf(ss.filter((s) => s.app !== "pg_restore").map((s) => s.started)) };
  };
  let n = 0;

  const shell = (v: Variant): Run => {
    const db = `shell_drill_${++n}`;
    const decode = v === "zstd" ? `zstd -d -q < ${files.zstd}` : `age -d -i ${keyFile} ${files.age} | zstd -d -q`;
    const c0 = cpuOf("self");
    const t = [performance.now()];
    const step = (cmd: string) => {
      const out = sh(`set -o pipefail; ${cmd}`, { env: pgEnv });
      t.push(performance.now());
      return out;
    };
    step(`${pg.binDir}/createdb ${conn} ${db}`);
    step(`${decode} | ${pg.binDir}/pg_restore ${flags} ${conn} --dbname=${db}`);
    const counted = Object.fromEntries(
      step(`${pg.binDir}/psql ${conn} --dbname=${db} -qAtX -v ON_ERROR_STOP=1 -f ${countSql}`)
        .trim()
        .split("\n")
        .map((line) => [line.slice(0, line.lastIndexOf("|")), Number(line.slice(line.lastIndexOf("|") + 1))]),
    );
    const wrong = Object.entries(fingerprint).filter(([table, rows]) => counted[table] !== rows);
    t[3] = performance.now(); // the comparison belongs to the count step
    step(`${pg.binDir}/dropdb ${conn} --force ${db}`);
    if (wrong.length) throw new Error(`shell drill: ${wrong.map(([table, rows]) => `${table} ${counted[table]} ≠ ${rows}`).join(", ")}`);
    const s = (i: number) => (t[i + 1]! - t[i]!) / 1000;
    return { seconds: (t[4]! - t[0]!) / 1000, cpu: { self: 0, tools: cpuOf("self").children - c0.children }, peakMiB: 0, steps: { setup: s(0), restore: s(1), count: s(2), drop: s(3) } };
  };

  /**
   * From the POST to the run's finishedAt (the daemon's clock is this machine's), polled every
   * 250 ms. Steps: setup = POST → pg_restore's connection; restore = → the first other session
   * in the scratch database (the counting); count = → startedAt + verification.durationMs (the
   * end of the verification as the daemon measured it); drop = → finishedAt (DROP DATABASE,
   * recording the run).
   */
  const snapdbDrill = async (v: Variant): Promise<Run> => {
    resetPeak(d.pid);
    const sampler = rssSampler(d.pid, 100);
    const c0 = cpuOf(d.pid);
    const t0 = Date.now();
    const queued = await api("POST", `/restore-plans/${plans[v]}/run-now`);
    const row = await until(`/restores/${queued.id}`);
    const finished = Date.parse(row.finishedAt);
    const c1 = cpuOf(d.pid);
    const mem = sampler.stop();
    const ver = row.verification;
    if (row.mode !== "drill" || ver?.status !== "passed" || ver.tables !== Object.keys(fingerprint).length || ver.rowsCompared !== totalRows) {
      throw new Error(`drill ${row.id} did not verify the whole backup: ${JSON.stringify(ver)}`);
    }
    if (row.progress.bytesWritten !== jobs[v].sizeBytes) throw new Error(`drill ${row.id} wrote ${row.progress.bytesWritten} bytes, the dump has ${jobs[v].sizeBytes}`);
    if (pg.psql(`SELECT count(*) FROM pg_database WHERE datname = '${row.targetDatabase}';`).trim() !== "0") throw new Error(`drill ${row.id} left ${row.targetDatabase}`);
    const seen = seenIn(row.targetDatabase);
    const verified = Date.parse(row.startedAt) + ver.durationMs;
    const steps =
      seen.restore !== null && seen.count !== null
        ? { setup: (seen.restore - t0) / 1000, restore: (seen.count - seen.restore) / 1000, count: (verified - seen.count) / 1000, drop: (finished - verified) / 1000 }
        : null;
    return { seconds: (finished - t0) / 1000, cpu: { self: c1.self - c0.self, tools: c1.children - c0.children }, peakMiB: Math.max(mem.hwm, mem.maxRss), steps };
  };

  const runs = Object.fromEntries(VARIANTS.map((v) => [v, { shell: [] as Run[], snapdb: [] as Run[] }])) as Record<Variant, { shell: Run[]; snapdb: Run[] }>;
  for (let r = 0; r < ROUNDS; r++) {
    const snapFirst = r % 2 === 1;
    for (const v of VARIANTS) {
      if (snapFirst) runs[v].snapdb.push(await snapdbDrill(v));
      runs[v].shell.push(shell(v));
      if (!snapFirst) runs[v].snapdb.push(await snapdbDrill(v));
      const [a, b] = [runs[v].shell[r]!, runs[v].snapdb[r]!];
      const fmt = (s: Steps | null) => (s ? `${s.setup.toFixed(2)}/${s.restore.toFixed(2)}/${s.count.toFixed(2)}/${s.drop.toFixed(2)}` : "—");
      console.log(
        `[${SIZE_GB} GB ${v} round ${r + 1}/${ROUNDS}, ${snapFirst ? "snapdb" : "shell"} first] shell ${a.seconds.toFixed(2)} s (${fmt(a.steps)}), snapdb ${b.seconds.toFixed(2)} s (${fmt(b.steps)}), ratio ${(b.seconds / a.seconds).toFixed(2)} (load ${load()})`,
      );
    }
  }
  await watcher.stop();

  const uptime = sh("uptime").trim();
  const dumpMb = jobs[VARIANTS[0]!].sizeBytes / MB;
  const rows: string[] = [];
  const stepRows: string[] = [];
  const summary: string[] = [];
  const two = (x: number) => x.toFixed(2);
  for (const v of VARIANTS) {
    const { shell: base, snapdb: snap } = runs[v];
    const ratios = snap.map((s, i) => s.seconds / base[i]!.seconds);
    const secs = (xs: Run[]) => xs.map((x) => x.seconds);
    const label = v === "zstd" ? "zstd 3" : "zstd 3 + age";
    const chain = v === "zstd" ? "zstd -d < f \\| pg_restore" : "age -d -i key f \\| zstd -d \\| pg_restore";
    rows.push(
      `| ${label}: shell, createdb; ${chain}; count(*) per table; dropdb --force | ${mmm(secs(base), two)} | ${(dumpMb / median(secs(base))).toFixed(0)} | 0.00 + ${two(median(base.map((b) => b.cpu.tools)))} | |`,
    );
    rows.push(
      `| ${label}: snapdb drill, run-now → finishedAt | ${mmm(secs(snap), two)} | ${(dumpMb / median(secs(snap))).toFixed(0)} | ${two(median(snap.map((s) => s.cpu.self)))} + ${two(median(snap.map((s) => s.cpu.tools)))} | ${mmm(
        snap.map((s) => s.peakMiB),
        (x) => x.toFixed(0),
      )} |`,
    );
    for (const [side, xs] of [
      ["shell", base],
      ["snapdb", snap],
    ] as const) {
      const st = xs.map((x) => x.steps).filter((s): s is Steps => s !== null);
      const col = (k: keyof Steps) =>
        st.length
          ? mmm(
              st.map((s) => s[k]),
              two,
            )
          : "—";
      stepRows.push(`| ${label}: ${side} | ${col("setup")} | ${col("restore")} | ${col("count")} | ${col("drop")} | ${st.length} of ${xs.length} |`);
    }
    summary.push(
      `${label}: median of the per-round ratios **${two(median(ratios))}** (range ${two(Math.min(...ratios))}–${two(Math.max(...ratios))}; ${ratios.filter((x) => x <= 1.1).length} of ${ROUNDS} rounds ≤ 1.10), ratio of the medians ${two(median(secs(snap)) / median(secs(base)))}. Per round: ${ratios.map(two).join(", ")}.`,
    );
  }
  appendResults(
    "Restore drill vs the same work by hand, paired rounds (bench/drill.ts)",
    `### ${SIZE_GB} GB: database ${(dbBytes(pg) / 1e9).toFixed(2)} GB on disk, dump ${dumpMb.toFixed(0)} MB, stored ${VARIANTS.map((v) => `${(jobs[v].storedBytes / MB).toFixed(0)} MB (${v === "zstd" ? "zstd 3" : "zstd 3 + age"})`).join(", ")}; ${Object.keys(fingerprint).length} tables, ${totalRows.toLocaleString("en")} rows in the fingerprint; generated in ${genSeconds.toFixed(0)} s

\`uptime\` at the end: ${uptime}

| ${ROUNDS} rounds, alternating order | seconds, median (min–max) | MB/s of dump bytes | CPU s, median: daemon + tools | daemon peak RSS MiB |
|---|---|---|---|---|
${rows.join("\n")}

${summary.join("\n")}

Where the time goes, seconds, median (min–max) of the rounds where every step was seen:

| side | setup (→ pg_restore connects) | restore (→ counting starts) | count + compare | drop (+ record) | rounds |
|---|---|---|---|---|---|
${stepRows.join("\n")}

Both sides restore the same stored file with the same pg_restore flags (${flags}) into a database they create, count the rows of every table (the shell: one psql session, \`SELECT count(*)\` per table of pg_class; snapdb: its verification, one connection, the same) and compare them with the backup's fingerprint, then drop the database (\`DROP DATABASE … WITH (FORCE)\` / \`dropdb --force\`). snapdb's time runs from \`POST /restore-plans/{id}/run-now\` to the run's finishedAt (polled every 250 ms) and includes the queue, the target checks, the stored file's sha256, the chain of tools (\`[age -d |] zstd -d | pg_restore\`) and recording the run; each run was checked: mode drill, verification passed over all ${Object.keys(fingerprint).length} tables and ${totalRows.toLocaleString("en")} rows, bytesWritten = the dump's size, scratch database gone. The shell's steps are timed one by one; snapdb's from outside: setup ends when pg_restore's session in the scratch database started (pg_stat_activity.backend_start, sampled every 50 ms on both sides), restore when the next session there (the counting) started, count at startedAt + verification.durationMs, drop at finishedAt.
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
