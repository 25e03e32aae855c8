/**
 * Profile for scheduler-scale.ts: the cost of one scheduled firing inside snapdb, without
 * timers. Seeds N attachments (each on its own missing SQLite source) in a real store, then
 * calls `scheduler.fire(id, minute)` — the very code a timer runs — for F of them in a row,
 * with the runner stopped and then started (woken after each queued job); then F more
 * queued by the same function inside ONE outer transaction (savepoints) and one wake, as a
 * timer's group now does (in slices of ~40 ms).
 *
 *   node_modules/.bin/bun bench/scheduler-profile.ts [N=10000] [F=2000]
 */
import { newId } from "../src/lib/ids.ts";
import { queueScheduledRun } from "../src/scheduler/fire.ts";
import { createHarness } from "../test/helpers/harness.ts";
import { median, percentile } from "./lib.ts";

const N = Math.min(50_000, Number(process.argv[2] ?? 10000));
const F = Math.min(N / 3, Number(process.argv[3] ?? 2000));
const ORG = "org_bench";
const h = await createHarness({ SNAPDB_RUNNER_MAX_CONCURRENT: "1" });
try {
  const token = await h.token(ORG);
  const dst = (await h.call("POST", "/storage-destinations/managed/ensure", { token })).body;
  const pol = (
    await h.call("POST", "/backup-policies", {
      token,
      body: {
        name: "every-minute",
        scheduleCron: "* * * * *",
        timezone: "UTC",
        destinationId: dst.id,
        retention: { keepLast: 7 },
        compression: { algorithm: "zstd", level: 3 },
        encryption: { enabled: false, recipients: [] },
        timeoutSeconds: 600,
        retries: 0,
      },
    })
  ).body;
  const now = Date.now();
  const ids: string[] = [];
  const s = h.store.sqlite;
  const insSource = s.prepare("INSERT INTO data_sources (id, org_id, name, engine, path, options, labels, created_at, updated_at) VALUES (?, ?, ?, 'sqlite', ?, '{}', '{}', ?, ?)");
  const insAtt = s.prepare("INSERT INTO attachments (id, org_id, data_source_id, policy_id, enabled, last_scheduled_at, created_at, updated_at) VALUES (?, ?, ?, ?, 1, NULL, ?, ?)");
  s.transaction(() => {
    for (let i = 0; i < N; i++) {
      const ds = newId("ds");
      const att = newId("att");
      insSource.run(ds, ORG, `db-${i}`, `/nonexistent/db-${i}.sqlite`, now, now);
      insAtt.run(att, ORG, ds, pol.id, now, now);
      ids.push(att);
    }
  })();
  const round = async (label: string, from: number, minute: number) => {
    const xs: number[] = [];
    const t0 = performance.now();
    for (const id of ids.slice(from, from + F)) {
      const t = performance.now();
      const r = await h.scheduler.fire(id, minute);
      if (r.outcome !== "queued") throw new Error(`${id}: ${r.outcome}`);
      xs.push(performance.now() - t);
    }
    console.log(
      `${label}: ${F} firings in ${(performance.now() - t0).toFixed(0)} ms; each p50 ${median(xs).toFixed(2)} ms, p99 ${percentile(xs, 99).toFixed(2)} ms, max ${Math.max(...xs).toFixed(1)} ms`,
    );
  };
  const minute = Math.floor(now / 60_000) * 60_000;
  await round("runner stopped (queueScheduledRun only)", 0, minute);
  await h.runner.start();
  await round("runner started (a coalesced wakeSoon() per queued job)", F, minute);
  const t0 = performance.now();
  await h.store.db.transaction(async () => {
    for (const id of ids.slice(2 * F, 3 * F)) {
      if ((await queueScheduledRun(h.store.db, id, minute, Date.now())).outcome !== "queued") throw new Error("not queued");
    }
  });
  await h.runner.wake();
  console.log(`one transaction for all ${F} (then one wake), as a timer group does: ${(performance.now() - t0).toFixed(0)} ms`);
} finally {
  h.close();
}
process.exit(0);
