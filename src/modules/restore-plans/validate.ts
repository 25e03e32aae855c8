import { and, eq } from "drizzle-orm";
import type { Tx } from "../../db/client.ts";
import { dataSources } from "../../db/schema.ts";
import { bareHost } from "../../engines/network.ts";
import { DATABASE_NAME, engineFamily } from "../../engines/restore.ts";
import { engineFor } from "../../engines/registry.ts";
import { isWholeServer, WHOLE_SERVER } from "../../engines/whole-server.ts";
import { realPathOf } from "../../lib/host-paths.ts";
import { AppError, invalidInput } from "../../lib/errors.ts";
import { checkCron, checkZone } from "../policies/validate.ts";

type DataSourceRow = typeof dataSources.$inferSelect;

export interface PlanFields {
  name: string;
  dataSourceId: string;
  mode: "drill" | "refresh";
  scheduleCron: string;
  timezone: string;
  target: { dataSourceId: string; database?: string | null };
  checks: { name: string; sql: string; expect: string }[];
  enabled: boolean;
}

/** The plan as stored, every rule checked. */
export interface CheckedPlan extends Omit<PlanFields, "target"> {
  targetDataSourceId: string;
  targetDatabase: string | null;
}

async function sourceOf(tx: Tx, orgId: string, id: string, path: string): Promise<DataSourceRow> {
  const row = (
    await tx
      .select()
      .from(dataSources)
      .where(and(eq(dataSources.orgId, orgId), eq(dataSources.id, id)))
  )[0];
  if (!row) throw invalidInput(path, `${path.slice(1).replace("/", ".")} does not name a data source of this organisation`);
  return row;
}

const where = (row: DataSourceRow) => `${bareHost(row.host).toLowerCase()}:${row.port ?? engineFor(row.engine).defaultPort}`;

/**
 * Whether a refresh would write into the plan's own data source: the same data source and
 * database, or another data source naming the same server and database (or SQLite file).
 */
function isSameDatabase(source: DataSourceRow, target: DataSourceRow, database: string | null): boolean {
  if (source.engine === "sqlite") {
    if (source.id === target.id) return true;
    const a = source.path ? (realPathOf(source.path) ?? source.path) : null;
    const b = target.path ? (realPathOf(target.path) ?? target.path) : null;
    return a !== null && a === b;
  }
  if (database !== source.database) return false;
  return source.id === target.id || where(source) === where(target);
}

/** Checks a plan's fields against each other and the org's data sources (400 with the offending field). */
export async function checkPlan(tx: Tx, orgId: string, input: PlanFields): Promise<CheckedPlan> {
  const scheduleCron = checkCron(input.scheduleCron);
  const timezone = checkZone(input.timezone);
  const source = await sourceOf(tx, orgId, input.dataSourceId, "/dataSourceId");
  if (isWholeServer(source)) {
    throw invalidInput(
      "/dataSourceId",
      `the data source is a whole server (database "${WHOLE_SERVER}"): a restore plan restores a logical backup of one database; create a data source for the database to drill or refresh`,
    );
  }
  const target = await sourceOf(tx, orgId, input.target.dataSourceId, "/target/dataSourceId");
  if (engineFamily(source.engine) !== engineFamily(target.engine)) {
    throw invalidInput("/target/dataSourceId", `a ${source.engine} backup cannot be restored into a ${target.engine} data source`);
  }
  const given = input.target.database ?? null;
  let targetDatabase: string | null = null;
  if (input.mode === "drill") {
    if (given !== null) throw invalidInput("/target/database", "target.database applies to refresh only: a drill restores into a scratch database it creates and drops");
  } else if (target.engine === "sqlite") {
    if (given !== null) throw invalidInput("/target/database", "target.database applies to network engines only; a SQLite target is its data source's path");
    if (isSameDatabase(source, target, null)) throw invalidInput("/target", "a refresh never restores into the plan's own data source: pick another target");
  } else {
    targetDatabase = given ?? target.database;
    if (!targetDatabase) throw invalidInput("/target/database", "the target data source names no database: give target.database");
    if (!DATABASE_NAME.test(targetDatabase)) {
      throw invalidInput("/target/database", "target.database must start with a letter or _ and hold only letters, digits, _, $ and - (at most 63)");
    }
    if (isSameDatabase(source, target, targetDatabase)) {
      throw invalidInput("/target", `a refresh never restores into the plan's own data source: ${targetDatabase} on that server is the database being backed up`);
    }
  }
  const names = new Set<string>();
  input.checks.forEach((c, i) => {
    if (names.has(c.name)) throw invalidInput(`/checks/${i}/name`, `two checks are named ${JSON.stringify(c.name)}; names must be unique`);
    names.add(c.name);
    if (!c.sql.trim()) throw invalidInput(`/checks/${i}/sql`, "a check needs SQL");
  });
  return {
    name: input.name,
    dataSourceId: source.id,
    mode: input.mode,
    scheduleCron,
    timezone,
    targetDataSourceId: target.id,
    targetDatabase,
    checks: input.checks.map((c) => ({ name: c.name, sql: c.sql, expect: c.expect })),
    enabled: input.enabled,
  };
}

export const nameTaken = (name: string) => new AppError("CONFLICT", `a restore plan named ${JSON.stringify(name)} already exists`, [{ path: "/name", message: "already in use" }]);
