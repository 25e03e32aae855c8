/**
 * The scheduler at scale: 10,000 enabled attachments (each on its own data source), 2,000 of
 * them on `* * * * *`. Measures the daemon's start time and idle memory with 10,000
 * attachments (next to an empty daemon's), then the delay between the scheduled minute and
 * each job's `queued_at` when the 2,000 fire at once.
 *
 *   node_modules/.bin/bun bench/scheduler-scale.ts [--attachments 10000] [--firing 2000]
 *
 * So that the runner does not really run the 2,000 jobs: the data sources are SQLite files
 * that do not exist (a job fails in milliseconds without touching anything) and the daemon
 * runs with SNAPDB_RUNNER_MAX_CONCURRENT=1. Catch-up is off (SNAPDB_SCHEDULER_CATCH_UP=none)
 * so only the timers queue jobs.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { newId } from "../src/lib/ids.ts";
import { tempDir } from "../test/helpers/tmp.ts";
import { apiOf, appendResults, cleanupStack, daemon, memOf, mmm, percentile } from "./lib.ts";

const { values } = parseArgs({ options: { attachments: { type: "string", default: "10000" }, firing: { type: "string", default: "2000" } } });
const TOTAL = Math.min(50_000, Number(values.attachments));
const FIRING = Math.min(TOTAL, Number(values.firing));
const ORG = "org_bench";
const ENV = { SNAPDB_RUNNER_MAX_CONCURRENT: "1", SNAPDB_SCHEDULER_CATCH_UP: "none" };

const cleanup = cleanupStack();
const dir = tempDir("snapdb-bench-sched");
cleanup.push(() => dir.cleanup());

/** Waits `ms` while sampling the daemon's RSS; returns the samples (MiB). */
async function settle(pid: number, ms: number): Promise<number[]> {
  const xs: number[] = [];
  for (const end = Date.now() + ms; Date.now() < end; ) {
    xs.push(memOf(pid)?.rss ?? 0);
    await Bun.sleep(250);
  }
  return xs;
}

try {
  // An empty daemon for reference, which also makes the store, keys and the two policies.
  const empty = await daemon({ dataDir: dir.path, env: ENV });
  cleanup.push(() => empty.stop());
  const emptyRss = await settle(empty.pid, 5000);
  const api = apiOf(empty, await empty.token(ORG));
  const managed = await api("POST", "/storage-destinations/managed/ensure");
  const policy = async (name: string, scheduleCron: string) =>
    (
      await api("POST", "/backup-policies", {
        name,
        scheduleCron,
        timezone: "UTC",
        destinationId: managed.id,
        retention: { keepLast: 7 },
        compression: { algorithm: "zstd", level: 3 },
        encryption: { enabled: false, recipients: [] },
        timeoutSeconds: 600,
        retries: 0,
      })
    ).id as string;
  const everyMinute = await policy("every-minute", "* * * * *");
  // The others spread over the day so they do not fire during the measurement.
  const nightly = await policy("nightly", "17 3 * * *");
  const hourly = await policy("hourly-at-41", "41 * * * *");
  await empty.stop();

  const t0 = performance.now();
  const sqlite = new Database(join(dir.path, "snapdb.db"));
  sqlite.run("PRAGMA busy_timeout = 5000");
  const now = Date.now();
  const insSource = sqlite.prepare("INSERT INTO data_sources (id, org_id, name, engine, path, options, labels, created_at, updated_at) VALUES (?, ?, ?, 'sqlite', ?, '{}', '{}', ?, ?)");
  const insAtt = sqlite.prepare("INSERT INTO attachments (id, org_id, data_source_id, policy_id, enabled, last_scheduled_at, created_at, updated_at) VALUES (?, ?, ?, ?, 1, NULL, ?, ?)");
  sqlite.transaction(() => {
    for (let i = 0; i < TOTAL; i++) {
      const ds = newId("ds");
      insSource.run(ds, ORG, `app-db-${i}`, join(dir.path, "missing", `db-${i}.sqlite`), now, now);
      const pol = i < FIRING ? everyMinute : i % 2 ? nightly : hourly;
      insAtt.run(newId("att"), ORG, ds, pol, now, now);
    }
  })();
  sqlite.close();
  const seedSeconds = (performance.now() - t0) / 1000;

  const startAt = performance.now();
  const d = await daemon({ dataDir: dir.path, env: ENV });
  cleanup.push(() => d.stop());
  const readySeconds = (performance.now() - startAt) / 1000;
  // Idle: after start, before the minute (if the minute comes first, this includes it; said below).
  const readyAt = Date.now();
  const nextMinute = Math.ceil((readyAt + 1) / 60_000) * 60_000;
  const idleMs = Math.max(0, Math.min(10_000, nextMinute - Date.now() - 1500));
  const idleRss = await settle(d.pid, idleMs);

  // Wait for the minute and the firing jobs (bounded: 90 s after the minute).
  const db = new Database(join(dir.path, "snapdb.db"), { readonly: true });
  const during: number[] = [];
  const count = () => (db.query("SELECT count(*) AS n FROM backup_jobs WHERE trigger = 'schedule' AND queued_at >= ?").get(nextMinute) as { n: number }).n;
  while (Date.now() < nextMinute + 90_000 && count() < FIRING) {
    during.push(memOf(d.pid)?.rss ?? 0);
    await Bun.sleep(200);
  }
  // The delay is measured from the minute itself: croner's currentRun(), which the scheduler
  // records as last_scheduled_at, is the second the timer actually ran, not the minute.
  const rows = db
    .query(
      `SELECT j.queued_at - ?1 AS delay, a.last_scheduled_at - ?1 AS recorded FROM backup_jobs j JOIN attachments a ON a.id = j.attachment_id
       WHERE j.trigger = 'schedule' AND j.queued_at >= ?1 AND j.queued_at < ?1 + 60000`,
    )
    .all(nextMinute) as { delay: number; recorded: number }[];
  const statuses = db.query("SELECT status, count(*) AS n FROM backup_jobs GROUP BY status").all() as { status: string; n: number }[];
  db.close();
  const delays = rows.map((r) => r.delay);
  const recorded = rows.map((r) => r.recorded);
  const exact = recorded.filter((x) => x === 0).length;
  if (delays.length === 0) throw new Error("no scheduled job was queued");
  const hwm = memOf(d.pid)?.hwm ?? 0;
  const ok = percentile(delays, 99) <= 2000;
  appendResults(
    "Scheduler at scale (bench/scheduler-scale.ts)",
    `${TOTAL.toLocaleString("en")} enabled attachments, each on its own data source (rows inserted in ${seedSeconds.toFixed(1)} s); ${FIRING.toLocaleString("en")} of them on \`* * * * *\`, the rest on \`17 3 * * *\` / \`41 * * * *\`. The data sources are SQLite paths that do not exist and the daemon runs with SNAPDB_RUNNER_MAX_CONCURRENT=1 and catch-up off, so the queued jobs fail fast one at a time instead of running backups.

| measure | value |
|---|---|
| start to /readyz with ${TOTAL.toLocaleString("en")} timers (bun src/main.ts serve) | ${readySeconds.toFixed(2)} s |
| idle RSS, empty daemon (sampled 5 s) | ${mmm(emptyRss, (n) => n.toFixed(0))} MiB |
| idle RSS with ${TOTAL.toLocaleString("en")} timers (sampled ${(idleMs / 1000).toFixed(0)} s before the minute) | ${idleRss.length ? mmm(idleRss, (n) => n.toFixed(0)) : "n/a (the minute came first)"} MiB |
| RSS while the ${FIRING.toLocaleString("en")} fire / peak (VmHWM) since start | ${during.length ? Math.max(...during).toFixed(0) : "n/a"} / ${hwm.toFixed(0)} MiB |
| jobs queued for the minute | ${delays.length} of ${FIRING} |
| delay scheduled minute → queued_at: min / p50 / p99 / max | ${Math.min(...delays)} / ${percentile(delays, 50)} / ${percentile(delays, 99)} / ${Math.max(...delays)} ms |
| last_scheduled_at recorded − the minute: exact / p50 / max | ${exact} of ${rows.length} exact / ${percentile(recorded, 50)} / ${Math.max(...recorded)} ms |
| job statuses afterwards | ${statuses.map((s) => `${s.status} ${s.n}`).join(", ")} |

Target p99 ≤ 2 s: ${ok ? "met" : "NOT met"}.
`,
  );
} finally {
  await cleanup.run();
}
process.exit(0);
