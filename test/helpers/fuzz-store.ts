import { createHash } from "node:crypto";
import type { Store } from "../../src/db/client.ts";
import { storeSuperuserSql } from "./store-matrix.ts";
import { storeAll, storeGet, storeRun } from "./store-sql.ts";

/** The store's tables: SQLite's own ones left out; on PostgreSQL the public schema's. */
async function tables(store: Store): Promise<string[]> {
  const rows =
    store.dialect === "sqlite"
      ? await storeAll<{ name: string }>(store, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      : await storeAll<{ name: string }>(store, `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name COLLATE "C"`);
  return rows.map((r) => r.name);
}

const rowText = (row: unknown) => JSON.stringify(row, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString("hex") : typeof v === "bigint" ? v.toString() : v));

/**
 * A fingerprint of every table of the store (row count and a hash of its rows), the audit
 * log included: equal before and after a rejected request means it changed nothing.
 */
export async function storeFingerprint(store: Store): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of await tables(store)) {
    const rows = await storeAll(store, `SELECT * FROM "${name}"`);
    const lines = rows.map(rowText).sort();
    out[name] = `${rows.length}:${createHash("sha256").update(lines.join("\n")).digest("hex").slice(0, 16)}`;
  }
  return out;
}

const counted = new WeakSet<Store>();

/**
 * PostgreSQL's `total_changes()`: a row trigger on every table draws from a sequence, and a
 * sequence is not rolled back, so (as SQLite's counter) it also counts rows written by a
 * transaction that was rolled back afterwards.
 */
async function installWriteCounter(store: Store): Promise<void> {
  if (counted.has(store)) return;
  await storeRun(store, "CREATE SEQUENCE test_row_writes");
  await storeRun(store, "CREATE FUNCTION test_count_row_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('test_row_writes'); RETURN NULL; END $$");
  for (const name of await tables(store)) {
    await storeRun(store, `CREATE TRIGGER test_count_row_write AFTER INSERT OR UPDATE OR DELETE ON "${name}" FOR EACH ROW EXECUTE FUNCTION test_count_row_write()`);
  }
  counted.add(store);
}

/**
 * The cheap per-request check: the rows written so far (SQLite's `total_changes()` counts every
 * row inserted, updated or deleted on the app's one connection, even an update to the same
 * value; on PostgreSQL a trigger counts the same on every connection) and each table's row
 * count. An unchanged value proves a request wrote nothing; hashing every row per request got
 * slow once the fuzzer had stored a few hundred 60 KiB values.
 */
export async function writeCounter(store: Store): Promise<string> {
  let changes: number;
  if (store.dialect === "sqlite") {
    changes = (await storeGet<{ n: number }>(store, "SELECT total_changes() AS n"))!.n;
  } else {
    await installWriteCounter(store);
    changes = (await storeGet<{ n: number }>(store, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM test_row_writes", [], ["n"]))!.n;
  }
  const counts: string[] = [];
  for (const name of await tables(store)) counts.push(`${name}=${(await storeGet<{ n: number }>(store, `SELECT count(*) AS n FROM "${name}"`, [], ["n"]))!.n}`);
  return `changes=${changes} ${counts.join(" ")}`;
}

/**
 * SQLite: `PRAGMA integrity_check` and `foreign_key_check`. PostgreSQL: amcheck's heap and
 * B-tree checks (every index against its table), and every foreign key checked row by row.
 * "ok" and no violations.
 */
export async function storeConsistency(h: { store: Store; config: { store: { url: string } } }): Promise<{ integrity: string; foreignKeyViolations: unknown[] }> {
  const { store } = h;
  if (store.dialect === "sqlite") {
    const integrity = (await storeAll<{ integrity_check: string }>(store, "PRAGMA integrity_check")).map((r) => r.integrity_check).join("; ");
    return { integrity, foreignKeyViolations: await storeAll(store, "PRAGMA foreign_key_check") };
  }
  const heap = await storeSuperuserSql(
    h,
    `CREATE EXTENSION IF NOT EXISTS amcheck;
     SELECT coalesce(string_agg(c.relname || ' block ' || v.blkno || ': ' || v.msg, '; '), 'ok')
       FROM pg_class c CROSS JOIN LATERAL verify_heapam(c.oid) v
      WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace;`,
  );
  // bt_index_check raises on a corrupt index (psql then fails and this throws).
  await storeSuperuserSql(
    h,
    `SELECT bt_index_check(c.oid, true) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
      WHERE a.amname = 'btree' AND c.relnamespace = 'public'::regnamespace;`,
  );
  const keys = await storeAll<{ child: string; parent: string; cols: string; refs: string }>(
    store,
    `SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent,
            (SELECT string_agg(a.attname, ',' ORDER BY k.o) FROM unnest(conkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = conrelid AND a.attnum = k.n) AS cols,
            (SELECT string_agg(a.attname, ',' ORDER BY k.o) FROM unnest(confkey) WITH ORDINALITY k(n, o) JOIN pg_attribute a ON a.attrelid = confrelid AND a.attnum = k.n) AS refs
       FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace`,
  );
  const foreignKeyViolations: unknown[] = [];
  for (const k of keys) {
    const cols = k.cols.split(",");
    const refs = k.refs.split(",");
    const notNull = cols.map((c) => `c."${c}" IS NOT NULL`).join(" AND ");
    const match = cols.map((c, i) => `p."${refs[i]}" = c."${c}"`).join(" AND ");
    const { n } = (await storeGet<{ n: number }>(store, `SELECT count(*) AS n FROM ${k.child} c WHERE ${notNull} AND NOT EXISTS (SELECT 1 FROM ${k.parent} p WHERE ${match})`, [], ["n"]))!;
    if (n > 0) foreignKeyViolations.push({ table: k.child, parent: k.parent, columns: k.cols, rows: n });
  }
  return { integrity: heap.trim(), foreignKeyViolations };
}
