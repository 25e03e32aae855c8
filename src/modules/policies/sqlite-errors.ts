/**
 * True when `error` (or an error it wraps) is SQLite refusing a row for a unique index
 * on exactly these columns (`table.column` as SQLite names them in its message).
 * A pre-check in the transaction gives the friendly answer; this catches the races.
 */
export function isUniqueViolation(error: unknown, columns: string): boolean {
  for (let e: any = error, depth = 0; e && depth < 5; e = e.cause, depth++) {
    const code = String(e.code ?? "");
    const message = String(e.message ?? "");
    if ((code === "SQLITE_CONSTRAINT_UNIQUE" || message.includes("UNIQUE constraint failed")) && message.includes(columns)) return true;
  }
  return false;
}
