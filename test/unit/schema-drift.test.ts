import { describe, expect, test } from "bun:test";
import { type Column, type InferInsertModel, type InferSelectModel, is, SQL, type Table } from "drizzle-orm";
import { PgDialect, PgTable, getTableConfig as pgTableConfig } from "drizzle-orm/pg-core";
import { SQLiteSyncDialect, SQLiteTable, getTableConfig as sqliteTableConfig } from "drizzle-orm/sqlite-core";
import * as pgSchema from "../../src/db/schema-pg.ts";
import * as sqliteSchema from "../../src/db/schema-sqlite.ts";

/**
 * The PostgreSQL store's schema (src/db/schema-pg.ts) must be the SQLite one (src/db/schema-sqlite.ts)
 * table for table, column for column, so services read and write the same rows on both.
 */

type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Rows<S> = { [K in keyof S]: S[K] extends Table ? InferSelectModel<S[K]> : never };
type Inserts<S> = { [K in keyof S]: S[K] extends Table ? InferInsertModel<S[K]> : never };
// Compile-time half of the check (the suite's typecheck runs tsc): same row and insert types.
const sameRowTypes: Same<Rows<typeof pgSchema>, Rows<typeof sqliteSchema>> = true;
const sameInsertTypes: Same<Inserts<typeof pgSchema>, Inserts<typeof sqliteSchema>> = true;

const sqliteDialect = new SQLiteSyncDialect();
const pgDialect = new PgDialect();

/** What a column holds as seen from JS, whatever the engine's type for it. */
function kind(column: Column): unknown {
  switch (column.columnType) {
    case "SQLiteInteger":
    case "PgBigInt53":
      return "number";
    case "SQLiteBoolean":
    case "PgBoolean":
      return "boolean";
    case "SQLiteText":
    case "PgText":
      return column.enumValues?.length ? { enum: column.enumValues } : "string";
    case "SQLiteTextJson":
      return "json";
    case "PgCustomColumn":
      // schema-pg's jsonText: text on the server, JSON in and out.
      if (column.getSQLType() === "text" && column.mapToDriverValue({ a: [1] }) === '{"a":[1]}') return "json";
  }
  return `unmapped ${column.columnType} (${column.getSQLType()})`;
}

const render = (value: unknown, dialect: SQLiteSyncDialect | PgDialect) => (is(value, SQL) ? { sql: dialect.sqlToQuery(value).sql } : value);
const names = (columns: unknown[]) => columns.map((c) => (c as { name?: string }).name ?? "(expression)");

function shape(config: ReturnType<typeof sqliteTableConfig> | ReturnType<typeof pgTableConfig>, dialect: SQLiteSyncDialect | PgDialect) {
  return {
    name: config.name,
    columns: config.columns.map((c) => ({
      name: c.name,
      kind: kind(c),
      notNull: c.notNull,
      primary: c.primary,
      hasDefault: c.hasDefault,
      default: render(c.default, dialect),
    })),
    primaryKeys: config.primaryKeys.map((pk) => names(pk.columns)),
    indexes: config.indexes
      .map((i) => ({
        name: i.config.name,
        columns: names(i.config.columns),
        unique: i.config.unique,
        where: render(i.config.where, dialect) ?? null,
      }))
      .sort((a, b) => (a.name! < b.name! ? -1 : 1)),
    foreignKeys: config.foreignKeys
      .map((fk) => {
        const ref = fk.reference();
        return {
          columns: names(ref.columns),
          table: sqliteOrPgName(ref.foreignTable),
          foreignColumns: names(ref.foreignColumns),
          onDelete: fk.onDelete ?? "no action",
        };
      })
      .sort((a, b) => (a.columns.join() < b.columns.join() ? -1 : 1)),
    uniqueConstraints: config.uniqueConstraints.length,
    checks: config.checks.length,
  };
}

function sqliteOrPgName(table: Table): string {
  return is(table, SQLiteTable) ? sqliteTableConfig(table).name : pgTableConfig(table as PgTable).name;
}

const sqliteTables = Object.fromEntries(Object.entries(sqliteSchema).filter(([, v]) => is(v, SQLiteTable))) as Record<string, SQLiteTable>;
const pgTables = Object.fromEntries(Object.entries(pgSchema).filter(([, v]) => is(v, PgTable))) as Record<string, PgTable>;

describe("schema-pg.ts mirrors schema-sqlite.ts", () => {
  test("the row and insert types are the same (checked by tsc)", () => {
    expect(sameRowTypes && sameInsertTypes).toBe(true);
  });

  test("the same tables under the same exported names", () => {
    expect(Object.keys(pgTables).sort()).toEqual(Object.keys(sqliteTables).sort());
    expect(Object.keys(sqliteTables).length).toBeGreaterThan(10);
  });

  for (const [exported, table] of Object.entries(sqliteTables)) {
    test(`${exported}: same SQL name, columns, keys, indexes`, () => {
      const pgTable = pgTables[exported];
      expect(pgTable).toBeDefined();
      const want = shape(sqliteTableConfig(table), sqliteDialect);
      expect(JSON.stringify(want)).not.toContain("unmapped");
      expect(shape(pgTableConfig(pgTable!), pgDialect)).toEqual(want);
    });
  }
});
