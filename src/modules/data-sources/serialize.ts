import type { dataSources } from "../../db/schema.ts";
import { isoOf } from "../../lib/clock.ts";

export type DataSourceRow = typeof dataSources.$inferSelect;

/**
 * The API shape of a data source. Built field by field from the row on purpose: the
 * ciphertext and key id columns can never reach an answer by a later `...row`.
 */
export function toDataSource(row: DataSourceRow) {
  return {
    id: row.id,
    name: row.name,
    engine: row.engine,
    host: row.host,
    port: row.port,
    database: row.database,
    excludeDatabases: row.excludeDatabases ?? [],
    path: row.path,
    options: row.options,
    labels: row.labels,
    runOn: row.runOn ? { labels: row.runOn.labels } : null,
    credentials: row.credentialsUsername !== null && row.credentialsUpdatedAt !== null ? { username: row.credentialsUsername, updatedAt: isoOf(row.credentialsUpdatedAt) } : null,
    lastVerify: (row.lastVerify as any) ?? null,
    createdAt: isoOf(row.createdAt),
    updatedAt: isoOf(row.updatedAt),
  };
}
