import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../../src/db/client.ts";
import { LATEST_SCHEMA_VERSION, migrate, schemaVersion, SchemaTooNewError } from "../../src/db/migrate.ts";
import { MIGRATIONS } from "../../src/db/migrations.gen.ts";
import { renderEmbeddedMigrations, renderEmbeddedPgMigrations } from "../../scripts/migrations-source.ts";
import { tempDir } from "../helpers/tmp.ts";

const dir = tempDir("snapdb-migrate");
afterAll(() => dir.cleanup());

const tables = (file: string) => {
  const s = openStore(file);
  const names = (s.sqlite.query("SELECT name FROM sqlite_master WHERE type IN ('table','index','trigger') ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  s.close();
  return names;
};

describe("migrations", () => {
  test("the embedded migrations are the ones in migrations/ (run `npm run db:generate`)", () => {
    expect(readFileSync(new URL("../../src/db/migrations.gen.ts", import.meta.url), "utf8")).toBe(renderEmbeddedMigrations());
  });

  test("the embedded PostgreSQL migrations are the ones in migrations-pg/ (run `npm run db:generate`)", () => {
    expect(readFileSync(new URL("../../src/db/migrations-pg.gen.ts", import.meta.url), "utf8")).toBe(renderEmbeddedPgMigrations());
  });

  test("apply to a fresh store, then are a no-op", () => {
    const file = join(dir.path, "fresh.db");
    const s = openStore(file);
    const first = migrate(s.sqlite);
    expect(first.from).toBe(0);
    expect(first.to).toBe(LATEST_SCHEMA_VERSION);
    expect(first.applied).toEqual(MIGRATIONS.map((m) => m.tag));
    const before = tables(file);
    const again = migrate(s.sqlite);
    expect(again.applied).toEqual([]);
    expect(schemaVersion(s.sqlite)).toBe(LATEST_SCHEMA_VERSION);
    s.close();
    expect(tables(file)).toEqual(before);
    expect(before).toContain("audit_events");
  });

  test("a store at an older version gets only the missing migrations", () => {
    const s = openStore(join(dir.path, "partial.db"));
    const first = migrate(s.sqlite, MIGRATIONS.slice(0, 1));
    expect(first.to).toBe(1);
    const rest = migrate(s.sqlite);
    expect(rest.from).toBe(1);
    expect(rest.applied).toEqual(MIGRATIONS.slice(1).map((m) => m.tag));
    s.close();
  });

  test("a newer store than the binary knows is refused untouched", () => {
    const file = join(dir.path, "newer.db");
    const s = openStore(file);
    migrate(s.sqlite);
    s.sqlite.run(`PRAGMA user_version = ${LATEST_SCHEMA_VERSION + 1}`);
    const before = tables(file);
    expect(() => migrate(s.sqlite)).toThrow(SchemaTooNewError);
    expect(() => migrate(s.sqlite)).toThrow(/newer than this snapdb binary knows/);
    expect(schemaVersion(s.sqlite)).toBe(LATEST_SCHEMA_VERSION + 1);
    s.close();
    expect(tables(file)).toEqual(before);
  });

  test("a failing migration leaves the store at the previous whole version", () => {
    const s = openStore(join(dir.path, "failing.db"));
    const broken = [...MIGRATIONS, { version: LATEST_SCHEMA_VERSION + 1, tag: "broken", sql: "CREATE TABLE ok_1 (x); --> statement-breakpoint\nNOT SQL" }];
    expect(() => migrate(s.sqlite, broken)).toThrow();
    expect(schemaVersion(s.sqlite)).toBe(LATEST_SCHEMA_VERSION);
    expect(s.sqlite.query("SELECT name FROM sqlite_master WHERE name = 'ok_1'").get()).toBeNull();
    s.close();
  });

  test("the store runs in WAL mode with foreign keys on", () => {
    const s = openStore(join(dir.path, "pragmas.db"));
    expect((s.sqlite.query("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode).toBe("wal");
    expect((s.sqlite.query("PRAGMA foreign_keys").get() as { foreign_keys: number }).foreign_keys).toBe(1);
    expect((s.sqlite.query("PRAGMA busy_timeout").get() as { timeout: number }).timeout).toBe(5000);
    s.close();
  });

  test("audit events cannot be updated or deleted, even with SQL", () => {
    const s = openStore(join(dir.path, "audit.db"));
    migrate(s.sqlite);
    s.sqlite.run("INSERT INTO audit_events (id, org_id, occurred_at, actor_type, actor_id, action, target_type, target_id) VALUES ('aud_1','o',1,'user','u','x.y','t','t')");
    expect(() => s.sqlite.run("UPDATE audit_events SET action = 'z.z'")).toThrow(/append-only/);
    expect(() => s.sqlite.run("DELETE FROM audit_events")).toThrow(/append-only/);
    s.close();
  });
});
