import { addressOf, bareHost } from "./network.ts";
import type { SourceTarget } from "./types.ts";

/** A libpq conninfo value: single-quoted, with `\` and `'` backslash-escaped (libpq's rule). */
export const conninfoValue = (value: string) => `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;

/**
 * Where pg_dump / pg_restore connect, as ONE conninfo string given to `--dbname` (only the
 * port, a validated integer, goes as `--port=`). Those tools read `--dbname` as a
 * connection string when it holds `=` or starts with `postgres://`: a tenant's database named `dbname=other host=/run/postgresql user=postgres`
 * would connect elsewhere, as someone else. Inside a conninfo string every value is quoted,
 * so a name is only ever a name. `hostaddr` is the checked address (network.ts pinTarget)
 * and is what libpq connects to; `host` stays the name, for TLS verify-full and SNI.
 */
export function pgConninfo(target: SourceTarget, database: string): string {
  const pairs: [string, string][] = [
    ["host", bareHost(target.host)],
    ["hostaddr", addressOf(target)],
    ["user", target.credentials?.username ?? ""],
    ["dbname", database],
  ];
  return pairs.map(([k, v]) => `${k}=${conninfoValue(v)}`).join(" ");
}
