import { isIP } from "node:net";
import { isAbsolute } from "node:path";
import { engineFor } from "../../engines/registry.ts";
import { WHOLE_SERVER } from "../../engines/whole-server.ts";
import type { EngineName, EngineOptions } from "../../engines/types.ts";
import type { RunOn } from "../../fleet/run-on.ts";
import { AppError, type ErrorDetail } from "../../lib/errors.ts";

/** The location fields of a data source after defaults and a PATCH are applied. */
export interface SourceShape {
  engine: EngineName;
  host: string | null;
  port: number | null;
  database: string | null;
  excludeDatabases: string[];
  path: string | null;
  options: EngineOptions;
  labels: Record<string, string>;
  runOn: RunOn | null;
}

/** What checkShape needs to know beyond the source itself. */
export interface ShapeRules {
  /** The host boundary's objection to a SQLite path, or null (left out: the path is not checked). */
  pathProblem?: (path: string) => string | null;
  /** The store is shared by a fleet (PostgreSQL `store.url`): a source bound to one host must say which (`runOn`). */
  fleet?: boolean;
}

const LABEL_KEY = /^[A-Za-z0-9._/-]{1,63}$/;
/** runOn labels: what `node.labels` keys may be (config), and values alike. */
const NODE_LABEL = /^[A-Za-z0-9_.-]{1,63}$/;
const MAX_RUN_ON_LABELS = 16;
const pointer = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");
const LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const HOST_NAME = new RegExp(`^(?=.{1,253}\\.?$)${LABEL}(?:\\.${LABEL})*\\.?$`);
const CONTROL = /[\x00-\x1f\x7f]/;

/**
 * A host name or an IP address (IPv6 optionally in brackets, with a zone id), nothing a
 * client could read as something else: not a unix socket directory (`/run/postgresql`),
 * not `@abstract`, not an option (`-h…`), no spaces or `=`.
 */
export function isNetworkHost(host: string): boolean {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  const [address, zone, ...rest] = bare.split("%");
  if (isIP(address!) === 6) return rest.length === 0 && (zone === undefined || /^[A-Za-z0-9_.-]{1,32}$/.test(zone));
  return bare === host && HOST_NAME.test(host);
}

/**
 * The rules the JSON schema cannot say: which fields each engine takes, (given
 * `pathProblem`, the host boundary's verdict) whether a SQLite path may be used, and where
 * in a fleet its jobs may run. Every problem is reported at once, each with its JSON
 * pointer, so a client can fix a form in one go.
 */
export function checkShape(s: SourceShape, rules: ShapeRules = {}): void {
  const { pathProblem } = rules;
  const details: ErrorDetail[] = [];
  const bad = (path: string, message: string) => details.push({ path, message });
  if (s.engine === "sqlite") {
    if (s.path === null) bad("/path", "is required for engine sqlite");
    else if (!isAbsolute(s.path)) bad("/path", "must be an absolute path on the daemon's host");
    else if (s.path.includes("\0")) bad("/path", "must not contain NUL");
    else {
      const problem = pathProblem?.(s.path);
      if (problem) bad("/path", problem);
    }
    for (const f of ["host", "port", "database"] as const) if (s[f] !== null) bad(`/${f}`, "is not used by engine sqlite (use path)");
    if (s.excludeDatabases.length) bad("/excludeDatabases", "is not used by engine sqlite");
    if (Object.keys(s.options).length) bad("/options", "engine sqlite takes no options");
  } else {
    if (s.host === null) bad("/host", `is required for engine ${s.engine}`);
    else if (!isNetworkHost(s.host)) bad("/host", "must be a host name or an IP address (not a socket path)");
    if (s.database === null) bad("/database", `is required for engine ${s.engine}`);
    // Any other character is fine: the name reaches every tool as a quoted value, never as
    // a connection string or an option.
    else if (CONTROL.test(s.database)) bad("/database", "must not contain control characters");
    if (s.path !== null) bad("/path", `is only for engine sqlite (${s.engine} uses host, port, database)`);
    checkWholeServer(s, bad);
  }
  const labelKeys = Object.keys(s.labels);
  if (labelKeys.length > 64) bad("/labels", "at most 64 labels");
  for (const k of labelKeys) if (!LABEL_KEY.test(k)) bad(`/labels/${pointer(k)}`, "label keys are 1–63 chars of A-Za-z0-9._/-");
  checkRunOn(s, rules.fleet === true, bad);
  if (details.length) throw new AppError("INVALID_INPUT", `${details[0]!.path}: ${details[0]!.message}`, details);
}

/**
 * `runOn.labels` are matched against nodes' `node.labels`, so they look like them. On a
 * fleet's shared store a SQLite source must be pinned: its file is on one host, and another
 * host may well hold a different file at the same path. (A network source's `host` is never
 * a socket path, so no network source is bound to one host that way.)
 */
function checkRunOn(s: SourceShape, fleet: boolean, bad: (path: string, message: string) => void): void {
  if (s.runOn === null) {
    if (fleet && s.engine === "sqlite") {
      bad("/runOn", 'is required for a sqlite source when the store is shared by several nodes (store.url): name the labels of the node its file is on, e.g. { "labels": { "host": "db1" } }');
    }
    return;
  }
  const entries = Object.entries(s.runOn.labels);
  if (entries.length === 0) bad("/runOn/labels", "needs at least one label (runOn: null runs anywhere)");
  if (entries.length > MAX_RUN_ON_LABELS) bad("/runOn/labels", `at most ${MAX_RUN_ON_LABELS} labels`);
  for (const [k, v] of entries) {
    if (!NODE_LABEL.test(k)) bad(`/runOn/labels/${pointer(k)}`, "label keys are 1–63 chars of A-Za-z0-9_.-");
    else if (!NODE_LABEL.test(v)) bad(`/runOn/labels/${pointer(k)}`, "label values are 1–63 chars of A-Za-z0-9_.-");
  }
}

/** `excludeDatabases` and `includeRolePasswords` belong to a whole-server source (`database: "*"`). */
function checkWholeServer(s: SourceShape, bad: (path: string, message: string) => void): void {
  const whole = s.database === WHOLE_SERVER;
  if (!whole && s.excludeDatabases.length) bad("/excludeDatabases", 'applies only to database "*" (the whole server)');
  s.excludeDatabases.forEach((pattern, i) => {
    if (CONTROL.test(pattern)) bad(`/excludeDatabases/${i}`, "must not contain control characters");
  });
  if (s.options.includeRolePasswords === true && !(whole && s.engine === "postgres")) {
    bad("/options/includeRolePasswords", 'applies only to engine postgres with database "*" (MySQL/MariaDB users always keep their password hashes)');
  }
}

/** The engine's default port for a network source that leaves it out. */
export function withDefaults(s: SourceShape): SourceShape {
  if (s.engine !== "sqlite" && s.port === null) return { ...s, port: engineFor(s.engine).defaultPort };
  return s;
}
