import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { openStore } from "../../src/db/client.ts";
import { migrate } from "../../src/db/migrate.ts";
import { MIGRATIONS } from "../../src/db/migrations.gen.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("snapdb-migrate-plans");
afterAll(() => dir.cleanup());

/**
 * The restore plans migration rebuilds `restores` (backup_job_id becomes nullable): a store
 * with restores from before keeps them whole, as manual restores of no plan.
 */
test("restores written before restore plans survive the migration unchanged", () => {
  const s = openStore(join(dir.path, "old.db"));
  const plans = MIGRATIONS.find((m) => m.tag.endsWith("_restore_plans"))!;
  const before = MIGRATIONS.filter((m) => m.version < plans.version);
  migrate(s.sqlite, before);
  s.sqlite.run(
    `INSERT INTO restores (id, org_id, backup_job_id, source_data_source_id, target_data_source_id, target_database, clean, status, queued_at, started_at, finished_at, bytes_read, bytes_written, error, databases, notes)
     VALUES ('rst_1', 'org', 'job_1', 'ds_1', 'ds_2', 'copy', 1, 'failed', 10, 11, 12, 100, 200, '{"code":"X","message":"y"}', '["sales"]', '["role x existed"]')`,
  );
  migrate(s.sqlite);
  const row = s.sqlite.query("SELECT * FROM restores").get() as Record<string, unknown>;
  expect(row).toEqual({
    id: "rst_1",
    org_id: "org",
    backup_job_id: "job_1",
    source_data_source_id: "ds_1",
    target_data_source_id: "ds_2",
    target_database: "copy",
    clean: 1,
    status: "failed",
    queued_at: 10,
    started_at: 11,
    finished_at: 12,
    bytes_read: 100,
    bytes_written: 200,
    error: '{"code":"X","message":"y"}',
    databases: '["sales"]',
    notes: '["role x existed"]',
    plan_id: null,
    mode: null,
    trigger: "manual",
    verification: null,
    // Added by a later migration (point-in-time restores).
    target_time: null,
    target_directory: null,
    // Added by the fleet migration.
    node_id: null,
    lease_until: null,
    // Added with cancels that reach another node.
    cancel_requested_at: null,
    // Added with point-in-time restores' WAL delivery (copy | fetch).
    wal_delivery: null,
  });
  s.close();
});
