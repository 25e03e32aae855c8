/**
 * The restore target, measured in pairs: each round restores the same stored backup into a
 * new database twice, once through snapdb (`POST /restores` with `targetDatabase`) and once
 * by the shell pipeline doing the same work (`CREATE DATABASE`, then
 * `zstd -d < file | pg_restore …` with snapdb's pg_restore flags), back to back in
 * alternating order; the same for a zstd + age backup (`age -d -i key file | zstd -d |
 * pg_restore …`). Reports the median of the per-round ratios next to the ratio of the
 * medians, the CPU of each side and the daemon's peak RSS.
 *
 *   node_modules/.bin/bun bench/restore-paired.ts [--size 0.5] [--rounds 7]
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { newAgeIdentity } from "../src/crypto/age.ts";
import { startPostgres } from "../test/helpers/postgres.ts";
import { appendResults, cleanupStack, cpuOf, daemonWithPgSource, load, median, mmm, resetPeak, rssSampler, sh } from "./lib.ts";
import { dbBytes, growTo } from "./pg-data.ts";

const { values } = parseArgs({ options: { size: { type: "string", default: "0.5" }, rounds: { type: "string", default: "7" } } });
const SIZE_GB = Number(values.size);
const ROUNDS = Math.max(3, Math.min(25, Number(values.rounds)));
const TERMINAL = ["succeeded", "failed", "canceled"];
const MB = 1e6;

const cleanup = cleanupStack();
const scratch = mkdtempSync(join(tmpdir(), "snapdb-bench-restore-"));
cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  seconds: number;
  /** CPU seconds: the daemon itself (0 for the shell), and the tools. */
  cpu: { self: number; tools: number };
  peakMiB: number;
}

try {
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  pg.psql("ALTER ROLE snapdb_test CREATEDB;");
  const { d, api, managed, source } = await daemonWithPgSource(pg, cleanup);
  // The shell's key: the age backups are encrypted to it as well as to the org's own key.
  const key = await newAgeIdentity();
  const keyFile = join(scratch, "key.txt");
  writeFileSync(keyFile, `${key.identity}\n`, { mode: 0o600 });
  const policy = async (name: string, recipients: string[] | null) =>
    (
      await api("POST", "/backup-policies", {
        name,
        scheduleCron: "0 3 1 1 *",
        timezone: "UTC",
        destinationId: managed.id,
        retention: { keepLast: 10 },
        compression: { algorithm: "zstd", level: 3 },
        encryption: { enabled: recipients !== null, recipients: recipients ?? [] },
        timeoutSeconds: 3600,
        retries: 0,
      })
    ).id as string;
  const plain = await policy("zstd", null);
  const aged = await policy("zstd-age", [key.recipient]);
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
  const backup = async (policyId: string) => until(`/backup-jobs/${(await api("POST", "/backup-jobs/run-now", { dataSourceId: source.id, policyId })).id}`);
  const jobs = { zstd: await backup(plain), age: await backup(aged) };
  const fileOf = (job: any) => {
    const file = sh(`find ${d.dataDir}/managed -name '${job.id}.*'`).trim();
    if (!file) throw new Error("backup file not found under the managed dir");
    return file;
  };
  const files = { zstd: fileOf(jobs.zstd), age: fileOf(jobs.age) };

  const pgEnv = { PGPASSWORD: pg.password };
  const conn = `--no-password --host=${pg.host} --port=${pg.port} --username=${pg.user}`;
  const flags = "--no-owner --no-privileges --exit-on-error --single-transaction";
  let n = 0;
  const dropAll = () => {
    const names = pg.psql("SELECT datname FROM pg_database WHERE datname LIKE 'restore_%';").trim().split("\n").filter(Boolean);
    for (const name of names) pg.psql(`DROP DATABASE ${name};`);
  };

  const shell = (variant: "zstd" | "age"): Run => {
    const db = `restore_${++n}`;
    const decode = variant === "zstd" ? `zstd -d -q < ${files.zstd}` : `age -d -i ${keyFile} ${files.age} | zstd -d -q`;
    const c0 = cpuOf("self");
    const t0 = performance.now();
    sh(`set -o pipefail; ${pg.binDir}/psql ${conn} --dbname=postgres -qAtX -c 'CREATE DATABASE ${db}' && ${decode} | ${pg.binDir}/pg_restore ${flags} ${conn} --dbname=${db}`, { env: pgEnv });
    const seconds = (performance.now() - t0) / 1000;
    return { seconds, cpu: { self: 0, tools: cpuOf("self").children - c0.children }, peakMiB: 0 };
  };
  /** From the POST to the restore's finishedAt (the daemon's clock is this machine's), polled every 250 ms. */
  const snapdb = async (variant: "zstd" | "age"): Promise<Run> => {
    resetPeak(d.pid);
    const sampler = rssSampler(d.pid, 100);
    const c0 = cpuOf(d.pid);
    const t0 = Date.now();
    const r = await api("POST", "/restores", { backupJobId: jobs[variant].id, targetDatabase: `restore_${++n}` });
    const row = await until(`/restores/${r.id}`);
    const seconds = (Date.parse(row.finishedAt) - t0) / 1000;
    const c1 = cpuOf(d.pid);
    const mem = sampler.stop();
    if (row.progress.bytesWritten !== jobs[variant].sizeBytes) throw new Error(`restore ${r.id} wrote ${row.progress.bytesWritten} bytes, the dump has ${jobs[variant].sizeBytes}`);
    return { seconds, cpu: { self: c1.self - c0.self, tools: c1.children - c0.children }, peakMiB: Math.max(mem.hwm, mem.maxRss) };
  };

  const runs = { zstd: { shell: [] as Run[], snapdb: [] as Run[] }, age: { shell: [] as Run[], snapdb: [] as Run[] } };
  for (let r = 0; r < ROUNDS; r++) {
    const snapFirst = r % 2 === 1;
    for (const variant of ["zstd", "age"] as const) {
      if (snapFirst) runs[variant].snapdb.push(await snapdb(variant));
      runs[variant].shell.push(shell(variant));
      if (!snapFirst) runs[variant].snapdb.push(await snapdb(variant));
      const ratio = runs[variant].snapdb[r]!.seconds / runs[variant].shell[r]!.seconds;
      console.log(
        `[${SIZE_GB} GB ${variant} round ${r + 1}/${ROUNDS}, ${snapFirst ? "snapdb" : "shell"} first] shell ${runs[variant].shell[r]!.seconds.toFixed(2)} s, snapdb ${runs[variant].snapdb[r]!.seconds.toFixed(2)} s, ratio ${ratio.toFixed(2)} (load ${load()})`,
      );
      dropAll();
    }
  }

  const uptime = sh("uptime").trim();
  const dumpMb = jobs.zstd.sizeBytes / MB;
  const rows: string[] = [];
  const summary: string[] = [];
  for (const variant of ["zstd", "age"] as const) {
    const { shell: base, snapdb: snap } = runs[variant];
    const ratios = snap.map((s, i) => s.seconds / base[i]!.seconds);
    const secs = (xs: Run[]) => xs.map((x) => x.seconds);
    const label = variant === "zstd" ? "zstd 3" : "zstd 3 + age";
    const shellCmd = variant === "zstd" ? "zstd -d < f \\| pg_restore" : "age -d -i key f \\| zstd -d \\| pg_restore";
    rows.push(
      `| ${label}: shell, CREATE DATABASE; ${shellCmd} | ${mmm(secs(base), (x) => x.toFixed(2))} | ${(dumpMb / median(secs(base))).toFixed(0)} | 0.00 + ${median(base.map((b) => b.cpu.tools)).toFixed(2)} | |`,
    );
    rows.push(
      `| ${label}: snapdb POST /restores → finishedAt | ${mmm(secs(snap), (x) => x.toFixed(2))} | ${(dumpMb / median(secs(snap))).toFixed(0)} | ${median(snap.map((s) => s.cpu.self)).toFixed(2)} + ${median(snap.map((s) => s.cpu.tools)).toFixed(2)} | ${mmm(
        snap.map((s) => s.peakMiB),
        (x) => x.toFixed(0),
      )} |`,
    );
    summary.push(
      `${label}: median of the per-round ratios **${median(ratios).toFixed(2)}** (range ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}; ${ratios.filter((x) => x <= 1.05).length} of ${ROUNDS} rounds ≤ 1.05), ratio of the medians ${(median(secs(snap)) / median(secs(base))).toFixed(2)} (target ≤ 1.05). Per round: ${ratios.map((x) => x.toFixed(2)).join(", ")}.`,
    );
  }
  appendResults(
    "Restore vs shell pipeline, paired rounds (bench/restore-paired.ts)",
    `### ${SIZE_GB} GB: database ${(dbBytes(pg) / 1e9).toFixed(2)} GB on disk, dump ${dumpMb.toFixed(0)} MB, stored ${(jobs.zstd.storedBytes / MB).toFixed(0)} MB (zstd 3; with age ${(jobs.age.storedBytes / MB).toFixed(0)} MB); generated in ${genSeconds.toFixed(0)} s

\`uptime\` at the end: ${uptime}

| ${ROUNDS} rounds, alternating order | seconds, median (min–max) | MB/s of dump bytes | CPU s, median: daemon + tools | daemon peak RSS MiB |
|---|---|---|---|---|
${rows.join("\n")}

${summary.join("\n")}

Both sides create the database and restore with the same pg_restore flags (${flags}) into it; snapdb's time runs from the POST to the restore's finishedAt and includes checking the target, creating the database and the stored file's sha256. snapdb's restores ran as the chain of tools (\`[age -d |] zstd -d | pg_restore\`, the daemon feeding the stored file and hashing it); each wrote exactly the dump's bytes (bytesWritten = sizeBytes, checked).
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
