/**
 * True when `error` (or an error it wraps) is the store refusing a row for a unique index on
 * exactly these columns, given as SQLite names them in its message (`table.column, …`).
 * SQLite says `UNIQUE constraint failed: t.a, t.b`; PostgreSQL sets SQLSTATE 23505 and a
 * detail `Key (a, b)=(…)`. A pre-check in the transaction gives the friendly answer; this
 * catches the races.
 */
export function isUniqueViolation(error: unknown, columns: string): boolean {
  const qualified = columns.split(",").map((c) => c.trim());
  const table = qualified[0]?.split(".")[0];
  const pgKey = `Key (${qualified.map((c) => c.split(".")[1]).join(", ")})=`;
  for (let e: any = error, depth = 0; e && depth < 5; e = e.cause, depth++) {
    const code = String(e.code ?? "");
    const message = String(e.message ?? "");
    if ((code === "SQLITE_CONSTRAINT_UNIQUE" || message.includes("UNIQUE constraint failed")) && message.includes(columns)) return true;
    const sqlState = String(e.errno ?? e.code ?? "");
    if (sqlState === "23505" && String(e.detail ?? "").startsWith(pgKey) && (e.table === undefined || e.table === table)) return true;
  }
  return false;
}
