/**
 * Structured JSON logs, one object a line on stdout (journald keeps them). Callers pass
 * fields, never secrets: the logger does not know what a secret is.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export type LogSink = (line: string) => void;

const stdoutSink: LogSink = (line) => process.stdout.write(line + "\n");

/** How many `cause` links are followed: enough for StorageError → SDK error → socket error. */
const MAX_CAUSE_DEPTH = 4;
const MAX_MESSAGE = 2000;

const clip = (text: string) => (text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text);

/**
 * An error as a log field: name, message, code and the `cause` chain (what an AWS SDK error
 * inside a StorageError said). Only these fields, never the error's other own properties:
 * SDK errors carry request and response details (S3's SignatureDoesNotMatch echoes the
 * access key id and the string it signed), and messages are written secret-free where they
 * are made (a password known to a connect or tool error is replaced there).
 */
function serializeError(value: unknown, depth: number, withStack: boolean): Record<string, unknown> {
  if (!(value instanceof Error)) {
    if (value && typeof value === "object") {
      const { name, message, code } = value as { name?: unknown; message?: unknown; code?: unknown };
      const out: Record<string, unknown> = {};
      if (typeof name === "string") out.name = name;
      if (typeof message === "string") out.message = clip(message);
      if (typeof code === "string" || typeof code === "number") out.code = code;
      return Object.keys(out).length ? out : { type: "object" };
    }
    return typeof value === "string" ? { message: clip(value) } : { value: String(value) };
  }
  const out: Record<string, unknown> = { name: value.name, message: clip(value.message) };
  const { code, $metadata } = value as { code?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof code === "string" || typeof code === "number") out.code = code;
  if (typeof $metadata?.httpStatusCode === "number") out.httpStatus = $metadata.httpStatusCode;
  if (withStack && value.stack) out.stack = value.stack;
  if (value.cause !== undefined && value.cause !== null) {
    out.cause = depth < MAX_CAUSE_DEPTH ? serializeError(value.cause, depth + 1, false) : { truncated: true };
  }
  return out;
}

/** Errors anywhere in the fields (top level or nested) are serialized; plain values pass. */
const replaceErrors = (_key: string, value: unknown) => (value instanceof Error ? serializeError(value, 0, true) : value);

export function createLogger(level: LogLevel = "info", base: Record<string, unknown> = {}, sink: LogSink = stdoutSink): Logger {
  const write = (lvl: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < ORDER[level]) return;
    const record: Record<string, unknown> = { ts: new Date().toISOString(), level: lvl, msg, ...base };
    if (fields) Object.assign(record, fields);
    sink(JSON.stringify(record, replaceErrors));
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, sink),
  };
}

/** For tests and commands that must keep stdout clean. */
export const silentLogger: Logger = createLogger("error", {}, () => {});
