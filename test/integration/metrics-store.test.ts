import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { tempDir } from "../helpers/tmp.ts";
import { sqliteWithRows } from "../helpers/sqlite-file.ts";

/**
 * The metrics that come from the store and the runner, scraped from `/metrics` of a real app
 * that backs up and restores real SQLite files.
 */
let h: Harness;
let token: string;
let policyId: string;
const scratch = tempDir("snapdb-metrics");
const ORG = "org_metrics";

beforeAll(async () => {
  h = await createHarness({ SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path });
  await h.runner.start();
  token = await h.token(ORG);
  policyId = (await createPolicy(h, token, (await managedDestination(h, token)).id)).id;
});

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  scratch.cleanup();
});

const scrape = async () => (await h.call("GET", "/metrics")).text;

async function backedUpSource(name: string) {
  const source = await createSource(h, token, { engine: "sqlite", path: sqliteWithRows(join(scratch.path, name)) });
  await attach(h, token, source.id, policyId);
  const job = await backupNow(h, token, source.id);
  expect(job.status).toBe("succeeded");
  return { source, job };
}

describe("/metrics from the store", () => {
  test("a deleted data source's last-success series is gone at the next scrape", async () => {
    const { source } = await backedUpSource("deleted.db");
    const { source: kept } = await backedUpSource("kept.db");
    const series = (id: string) => new RegExp(`^snapdb_backup_last_success_timestamp_seconds\\{data_source_id="${id}"\\} \\d{10}$`, "m");
    const before = await scrape();
    expect(before).toMatch(series(source.id));
    expect(before).toMatch(series(kept.id));

    expect((await h.call("DELETE", `/data-sources/${source.id}?cascade=true`, { token })).status).toBe(204);
    const after = await scrape();
    expect(after).not.toContain(source.id);
    expect(after).toMatch(series(kept.id));
    expect(after).toContain("# TYPE snapdb_backup_last_success_timestamp_seconds gauge");
  });

  test("restores: finished by status and code, durations of successful ones", async () => {
    const { job } = await backedUpSource("to-restore.db");
    const target = await createSource(h, token, { engine: "sqlite", path: join(scratch.path, "restored.db") });
    const ok = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: target.id }, 202);
    expect((await waitForStatus(h, token, `/restores/${ok.id}`)).status).toBe("succeeded");

    // The backup's file is damaged behind snapdb's back: the next restore of it fails while running.
    const file = join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", job.objectKey);
    writeFileSync(
      file,
      readFileSync(file).map((b) => b ^ 0xff),
    );
    const other = await createSource(h, token, { engine: "sqlite", path: join(scratch.path, "restored-2.db") });
    const bad = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: other.id }, 202);
    const failed = await waitForStatus(h, token, `/restores/${bad.id}`);
    expect(failed.status).toBe("failed");
    const code = failed.error.code;
    expect(code).toMatch(/^[A-Z_]+$/);

    const text = await scrape();
    expect(text).toMatch(/^snapdb_restores_finished_total\{code="",status="succeeded"\} 1$/m);
    expect(text).toMatch(new RegExp(`^snapdb_restores_finished_total\\{code="${code}",status="failed"\\} 1$`, "m"));
    expect(text).toMatch(/^snapdb_restore_duration_seconds_count 1$/m);
    expect(text).toMatch(/^snapdb_restore_duration_seconds_bucket\{le="\+Inf"\} 1$/m);
    expect(text).toContain("# TYPE snapdb_restore_duration_seconds histogram");
  });

  test("process metrics that mean something under Bun, none of V8's heap or GC", async () => {
    const text = await scrape();
    for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "process_open_fds", "process_max_fds"]) {
      expect(text).toMatch(new RegExp(`^${name} [0-9.e+]+$`, "m"));
    }
    expect(Number(text.match(/^process_resident_memory_bytes (\d+)$/m)?.[1])).toBeGreaterThan(1_000_000);
    const started = Number(text.match(/^process_start_time_seconds (\d+)$/m)?.[1]);
    expect(Math.abs(started - (Date.now() / 1000 - process.uptime()))).toBeLessThan(5);
    expect(text).not.toMatch(/^(nodejs_|process_heap_bytes)/m);
  });

  test("each app has its own registry: another app's requests are not counted here", async () => {
    const count = (text: string) => Number(text.match(/^snapdb_http_requests_total\{method="GET",route="\/data-sources",status="200"\} (\d+)$/m)?.[1] ?? 0);
    const before = count(await scrape());
    const other = await createHarness();
    try {
      const otherToken = await other.token(ORG);
      for (let i = 0; i < 3; i++) expect((await other.call("GET", "/data-sources", { token: otherToken })).status).toBe(200);
      await Bun.sleep(20);
      expect(count(await other.call("GET", "/metrics").then((r) => r.text))).toBe(3);
      expect(count(await scrape())).toBe(before);
    } finally {
      other.close();
    }
  });
});
