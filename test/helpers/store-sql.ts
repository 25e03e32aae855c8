import { type SQL, sql } from "drizzle-orm";
import type { Store } from "../../src/db/client.ts";
import { rawAll, rawRun } from "../../src/db/raw.ts";

/**
 * Raw SQL against the harness's store on either engine (the matrix, test/helpers/store-matrix.ts):
 * `?` placeholders take `params` in order, as bun:sqlite's would. What a test reads this way is
 * what the row holds on that engine; count(*) and other int8 results come back as numbers when
 * named in `numeric` (PostgreSQL answers them as strings).
 */
function bound(text: string, params: readonly unknown[]): SQL {
  const parts = text.split("?");
  if (parts.length !== params.length + 1) throw new Error(`${parts.length - 1} placeholders, ${params.length} params: ${text}`);
  const chunks: SQL[] = [sql.raw(parts[0]!)];
  params.forEach((p, i) => chunks.push(sql`${p}`, sql.raw(parts[i + 1]!)));
  return sql.join(chunks);
}

export const storeAll = <T = Record<string, unknown>>(store: Store, text: string, params: readonly unknown[] = [], numeric: readonly string[] = []) =>
  rawAll<T>(store.db, bound(text, params), numeric);

export const storeGet = async <T = Record<string, unknown>>(store: Store, text: string, params: readonly unknown[] = [], numeric: readonly string[] = []) =>
  (await storeAll<T>(store, text, params, numeric))[0];

export const storeRun = (store: Store, text: string, params: readonly unknown[] = []) => rawRun(store.db, bound(text, params));
