/**
 * Whole-server backups (`database: "*"`) against the same work by hand, in paired rounds.
 * One PostgreSQL server with four databases of different sizes (grown to at least 40 / 30 / 20 / 10 % of
 * `--size` GB on disk), backed up as a whole server (globals + every database, each its own
 * file: `tool | zstd 3 [| age]` → file, fsynced, sha256) to the local managed destination,
 * and by a shell doing the same: `pg_dumpall --globals-only --no-role-passwords | zstd -3
 * [| age -r …] > file`, then `pg_dump -Fc -Z0 db | zstd -3 [| age -r …] > file` for each
 * database in name order, each file synced, one at a time (against a daemon with
 * `runner.partsConcurrency` 1) and two at a time (`xargs -P 2`, as the daemon's
 * partsConcurrency 2 takes the parts: the next one starts when one ends). The two sides of a
 * pair run back to back, in alternating order. Reports the median of the per-round ratios next
 * to the ratio of the medians, dump MB/s, the CPU of each side, the daemon's peak RSS, 2 ÷ 1
 * for both sides, and, for the one-at-a-time pair, where the time goes: from the start to
 * the first database's pg_dump session, and from each database's session to the next (the
 * server-side backend_start, sampled from pg_stat_activity on both sides alike).
 *
 *   node_modules/.bin/bun bench/whole-server.ts [--size 0.5] [--rounds 7] [--parts 1,2] [--variants zstd,age]
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { newAgeIdentity } from "../src/crypto/age.ts";
import { startPostgres } from "../test/helpers/postgres.ts";
import { apiOf, appendResults, cleanupStack, cpuOf, daemon, load, median, mmm, sessionWatcher, sh, shAsync } from "./lib.ts";
import { dbBytes, growTo } from "./pg-data.ts";
import { runJob } from "./run-job.ts";

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "0.5" },
    rounds: { type: "string", default: "7" },
    parts: { type: "string", default: "1,2" },
    variants: { type: "string", default: "zstd,age" },
  },
});
const SIZE_GB = Number(values.size);
const ROUNDS = Math.max(3, Math.min(15, Number(values.rounds)));
const PARTS = [...new Set(values.parts!.split(",").map(Number))].filter((p) => p === 1 || p === 2);
type Variant = "zstd" | "age";
const VARIANTS = values.variants!.split(",").filter((v): v is Variant => v === "zstd" || v === "age");
if (!PARTS.length || !VARIANTS.length || !(SIZE_GB > 0)) throw new Error("--parts takes 1 and/or 2; --variants zstd and/or age; --size a positive number of GB");
/** Share of the total size per database; the daemon and the shell take them in name order. */
const SHARES: Record<string, number> = { bench_a: 0.4, bench_b: 0.3, bench_c: 0.2, bench_d: 0.1 };
const DATABASES = Object.keys(SHARES);
const MB = 1e6;
const LABEL: Record<Variant, string> = { zstd: "zstd 3", age: "zstd 3 + age" };

const cleanup = cleanupStack();
const scratch = mkdtempSync(join(tmpdir(), "snapdb-bench-server-"));
cleanup.push(() => rmSync(scratch, { recursive: true, force: true }));

interface Run {
  /** Wall seconds: the shell's whole run; snapdb's request → finishedAt. */
  seconds: number;
  /** snapdb: the job's own startedAt → finishedAt. */
  jobSeconds: number | null;
  /** CPU seconds: the daemon itself (0 for the shell), and the tools. */
  cpu: { self: number; tools: number };
  peakMiB: number;
  storedBytes: number;
  /** Seconds from the start to the first database's pg_dump session, then from each database's session to the next (the last: to the end); null when one was not seen. */
  steps: number[] | null;
}

try {
  const pg = await startPostgres();
  cleanup.push(() => pg.stop());
  pg.psql(DATABASES.map((d) => `CREATE DATABASE ${d} OWNER ${pg.user};`).join("\n"));
  let genSeconds = 0;
  for (const d of DATABASES) genSeconds += growTo(pg, SIZE_GB * 1e9 * SHARES[d]!, { rows: 0 }, d, 100_000);
  const onDisk = DATABASES.map((d) => dbBytes(pg, d) / MB);
  console.log(`databases ${onDisk.map((s) => s.toFixed(0)).join(" / ")} MB on disk, generated in ${genSeconds.toFixed(0)} s`);
  // The shell's age recipient; snapdb's policies encrypt to the org's own key: one recipient each.
  const key = await newAgeIdentity();

  const setups = new Map<number, { d: Awaited<ReturnType<typeof daemon>>; api: ReturnType<typeof apiOf>; sourceId: string; policies: Record<Variant, string> }>();
  for (const parts of PARTS) {
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
    const policyOf = async (v: Variant) =>
      (
        await api("POST", "/backup-policies", {
          name: `server-${v}`,
          scheduleCron: "0 3 1 1 *",
          timezone: "UTC",
          destinationId: managed.id,
          retention: { keepLast: 1 },
          compression: { algorithm: "zstd", level: 3 },
          encryption: { enabled: v === "age", recipients: [] },
          timeoutSeconds: 3600,
          retries: 0,
        })
      ).id as string;
    setups.set(parts, { d, api, sourceId: source.id, policies: { zstd: await policyOf("zstd"), age: await policyOf("age") } });
  }

  // Every pg_dump session of the benchmark's databases, on both sides alike.
  const watcher = sessionWatcher(pg, `application_name = 'pg_dump' AND datname IN (${DATABASES.map((d) => `'${d}'`).join(", ")})`);
  cleanup.push(() => watcher.stop());
  const stepsOf = (from: number, to: number): number[] | null => {
    const ss = watcher.sessions(from, to);
    const starts = DATABASES.map((db) => ss.filter((s) => s.datname === db).map((s) => s.started));
    if (starts.some((xs) => xs.length === 0)) return null;
    const marks = [from, ...starts.map((xs) => Math.min(...xs)), to];
    return marks.slice(1).map((m, i) => (m - marks[i]!) / 1000);
  };

  // The shell: one command per part, run by xargs one or two at a time (the next starts when one ends).
  const out = join(scratch, "out");
  const conn = `--no-password --host=${pg.host} --port=${pg.port} --username=${pg.user}`;
  const commandFile = (v: Variant) => {
    const tail = v === "age" ? ` | age -r ${key.recipient}` : "";
    const ext = v === "age" ? ".zst.age" : ".zst";
    const part = (tool: string, file: string) => `set -o pipefail; ${tool} | zstd -3 -q${tail} > ${out}/${file}${ext} && sync ${out}/${file}${ext} ${out}`;
    const commands = [
      part(`${pg.binDir}/pg_dumpall --globals-only --no-role-passwords ${conn}`, "globals.sql"),
      ...DATABASES.map((db) => part(`${pg.binDir}/pg_dump --format=custom --compress=0 ${conn} --dbname=${db}`, `db-${db}.dump`)),
    ];
    const path = join(scratch, `parts-${v}`);
    writeFileSync(path, commands.join("\0"));
    return path;
  };
  const commands: Record<Variant, string> = { zstd: commandFile("zstd"), age: commandFile("age") };
  const shell = async (parts: number, v: Variant): Promise<Run> => {
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out);
    const c0 = cpuOf("self");
    const t0 = Date.now();
    // Not blocking the event loop: the session watcher samples meanwhile, as it does during snapdb's job.
    await shAsync(`xargs -0 -n 1 -P ${parts} bash -c < ${commands[v]}`, { env: { PGPASSWORD: pg.password } });
    const t1 = Date.now();
    const tools = cpuOf("self").children - c0.children;
    const storedBytes = readdirSync(out).reduce((n, f) => n + statSync(join(out, f)).size, 0);
    if (readdirSync(out).length !== DATABASES.length + 1) throw new Error(`the shell wrote ${readdirSync(out).join(", ")}`);
    return { seconds: (t1 - t0) / 1000, jobSeconds: null, cpu: { self: 0, tools }, peakMiB: 0, storedBytes, steps: stepsOf(t0, t1) };
  };

  /** Each part's dump bytes, as the first job reported them. */
  const dumpBytes: Record<string, number> = {};
  const snapdb = async (parts: number, v: Variant): Promise<Run> => {
    const s = setups.get(parts)!;
    const run = await runJob(s.d, s.api, s.sourceId, s.policies[v]);
    const partsRow = run.row.parts as { name: string; objectKey: string | null; sizeBytes: number | null }[];
    const names = partsRow.map((p) => p.name);
    if (names.join() !== [":globals", ...DATABASES].join() || partsRow.some((p) => p.objectKey === null)) throw new Error(`job ${run.row.id} parts: ${JSON.stringify(partsRow)}`);
    if (!Object.keys(dumpBytes).length) for (const p of partsRow) dumpBytes[p.name] = p.sizeBytes ?? 0;
    const end = Date.parse(run.row.finishedAt);
    return {
      seconds: run.seconds,
      jobSeconds: run.jobSeconds,
      cpu: { self: run.cpu.self, tools: run.cpu.children },
      peakMiB: run.peakMiB,
      storedBytes: run.storedBytes,
      steps: stepsOf(end - run.seconds * 1000, end),
    };
  };

  const key2 = (parts: number, v: Variant) => `${parts}/${v}`;
  const runs = new Map<string, { shell: Run[]; snapdb: Run[] }>();
  for (const p of PARTS) for (const v of VARIANTS) runs.set(key2(p, v), { shell: [], snapdb: [] });
  const loadAtStart = load();
  for (let r = 0; r < ROUNDS; r++) {
    const snapFirst = r % 2 === 1;
    for (const v of VARIANTS) {
      for (const p of PARTS) {
        const pair = runs.get(key2(p, v))!;
        if (snapFirst) pair.snapdb.push(await snapdb(p, v));
        pair.shell.push(await shell(p, v));
        if (!snapFirst) pair.snapdb.push(await snapdb(p, v));
        const [a, b] = [pair.shell[r]!, pair.snapdb[r]!];
        console.log(
          `[round ${r + 1}/${ROUNDS} ${LABEL[v]}, ${p} at a time, ${snapFirst ? "snapdb" : "shell"} first] shell ${a.seconds.toFixed(2)} s, snapdb ${b.seconds.toFixed(2)} s (job ${b.jobSeconds!.toFixed(2)} s), ratio ${(b.seconds / a.seconds).toFixed(2)} (load ${load()})`,
        );
      }
    }
  }
  await watcher.stop();

  const uptime = sh("uptime").trim();
  const dumpTotal = Object.values(dumpBytes).reduce((a, b) => a + b, 0);
  const dumpMb = dumpTotal / MB;
  const two = (x: number) => x.toFixed(2);
  const secs = (xs: Run[]) => xs.map((x) => x.seconds);
  const rows: string[] = [];
  const summary: string[] = [];
  const stepRows: string[] = [];
  for (const v of VARIANTS) {
    for (const p of PARTS) {
      const { shell: base, snapdb: snap } = runs.get(key2(p, v))!;
      const shellLabel = p === 1 ? "one part at a time" : "two at a time (xargs -P 2)";
      rows.push(
        `| ${LABEL[v]} | shell, ${shellLabel} | ${mmm(secs(base), two)} | ${(dumpMb / median(secs(base))).toFixed(0)} | 0.00 + ${two(median(base.map((b) => b.cpu.tools)))} | ${(median(base.map((b) => b.storedBytes)) / MB).toFixed(1)} | |`,
      );
      rows.push(
        `| ${LABEL[v]} | snapdb, partsConcurrency ${p} (job ${mmm(
          snap.map((s) => s.jobSeconds!),
          two,
        )}) | ${mmm(secs(snap), two)} | ${(dumpMb / median(secs(snap))).toFixed(0)} | ${two(median(snap.map((s) => s.cpu.self)))} + ${two(median(snap.map((s) => s.cpu.tools)))} | ${(median(snap.map((s) => s.storedBytes)) / MB).toFixed(1)} | ${mmm(
          snap.map((s) => s.peakMiB),
          (x) => x.toFixed(0),
        )} |`,
      );
      const ratios = snap.map((s, i) => s.seconds / base[i]!.seconds);
      const jobRatios = snap.map((s, i) => s.jobSeconds! / base[i]!.seconds);
      summary.push(
        `- ${LABEL[v]}, ${p} at a time: snapdb ÷ shell, median of the per-round ratios **${two(median(ratios))}** (range ${two(Math.min(...ratios))}–${two(Math.max(...ratios))}; ${ratios.filter((x) => x <= 1.1).length} of ${ROUNDS} rounds ≤ 1.10), ratio of the medians ${two(median(secs(snap)) / median(secs(base)))}; the job's own seconds ÷ shell ${two(median(jobRatios))}. Per round: ${ratios.map(two).join(", ")}.`,
      );
      if (p === 1) {
        for (const [side, xs] of [
          ["shell", base],
          ["snapdb", snap],
        ] as const) {
          const st = xs.map((x) => x.steps).filter((s): s is number[] => s !== null);
          const col = (i: number) =>
            st.length
              ? mmm(
                  st.map((s) => s[i]!),
                  two,
                )
              : "—";
          stepRows.push(`| ${LABEL[v]}: ${side} | ${DATABASES.map((_, i) => col(i)).join(" | ")} | ${col(DATABASES.length)} | ${st.length} of ${xs.length} |`);
        }
      }
    }
    if (PARTS.length === 2) {
      const per = (side: "shell" | "snapdb") => {
        const [one, both] = [runs.get(key2(1, v))![side], runs.get(key2(2, v))![side]];
        return median(both.map((x, i) => x.seconds / one[i]!.seconds));
      };
      summary.push(`- ${LABEL[v]}, two at a time ÷ one at a time, median of the per-round ratios: shell ${two(per("shell"))}, snapdb ${two(per("snapdb"))}.`);
    }
  }
  const dbList = DATABASES.map((d, i) => `${d} ${onDisk[i]!.toFixed(0)} MB on disk / ${(dumpBytes[d]! / MB).toFixed(0)} MB dump`).join(", ");
  const stepHeader = DATABASES.map((d, i) => (i === 0 ? `start → ${d}'s pg_dump (setup + globals)` : `${DATABASES[i - 1]} → ${d}`));
  appendResults(
    "Whole-server backup vs the same work by hand, paired rounds (bench/whole-server.ts)",
    `### ${SIZE_GB} GB: ${dbList}; globals ${(dumpBytes[":globals"]! / 1e3).toFixed(1)} kB; ${dumpMb.toFixed(0)} MB of dump in all; generated in ${genSeconds.toFixed(0)} s

Load average (1/5/15 min) at the start of the rounds: ${loadAtStart}. \`uptime\` at the end: ${uptime}

| ${ROUNDS} rounds, alternating order | side | seconds, median (min–max) | MB/s of dump bytes | CPU s, median: daemon + tools | stored MB | daemon peak RSS MiB |
|---|---|---|---|---|---|---|
${rows.join("\n")}

${summary.join("\n")}

Where the time goes with one part at a time, seconds, median (min–max) of the rounds where every database's pg_dump session was seen:

| side | ${stepHeader.join(" | ")} | ${DATABASES[DATABASES.length - 1]} → end | rounds |
|---|${DATABASES.map(() => "---|").join("")}---|---|
${stepRows.join("\n")}

One PostgreSQL 15 server on this machine, a \`database: "*"\` data source (\`excludeDatabases: ["appdb", "postgres"]\`, so its parts are \`:globals\` and the four databases; every job's parts were checked), local managed destination. snapdb's time runs from \`POST /backup-jobs/run-now\` to the job's finishedAt (polled every 250 ms) and includes the request, the queue, finding the databases, recording the parts, and per part the chain \`pg_dumpall --globals-only --no-role-passwords\` or \`pg_dump -Fc -Z0\` \`| zstd -3 --check -vv [| age]\` written straight into the file while the daemon hashes it (sha256), then fsync of the file and its directory. The shell runs the same tools per part (\`| zstd -3 -q [| age -r key] > file && sync file dir\`, no sha256), its parts in the same order through \`xargs -0 -n 1 -P N bash -c\`. Two daemons (partsConcurrency 1 and 2, both \`runner.maxConcurrent\` 2) stay up over the rounds; CPU of the daemon counts its reaped children (the tools); the shell's is every process it ran. The PostgreSQL server's CPU is in neither. The step columns use each database's pg_dump backend_start (pg_stat_activity, sampled every 50 ms on both sides): the first column holds the setup and the globals part, each next one a database's part plus the gap before the next part starts.
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
