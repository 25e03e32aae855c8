import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { ValueErrorType } from "@sinclair/typebox/errors";
import { Value } from "@sinclair/typebox/value";
import { parse as parseToml, TomlError } from "smol-toml";
import { parseCidr } from "../net/cidr.ts";
import { DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR, defaultsFor } from "./defaults.ts";
import { ConfigSchema, LocalManagedStorage, S3ManagedStorage, type Config } from "./schema.ts";
import { ENV_BINDINGS, FLAG_BINDINGS, parseText } from "./sources.ts";
import { deepMerge, getPath, isPlainObject, leafPaths, setPath, unsafeKeyPaths, type Tree } from "./tree.ts";

/** Every problem found, each with the dotted path and where the value came from. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export interface LoadInput {
  /** Config-affecting flags of the command line, e.g. { "--listen": "0.0.0.0:80", "--config": "x.toml" }. */
  flags?: Record<string, string | undefined>;
  env?: Record<string, string | undefined>;
  /** Where to look when neither --config nor SNAPDB_CONFIG is given. */
  defaultConfigFile?: string;
}

export interface LoadedConfig {
  config: Config;
  /** The config file read, if any. */
  file: string | null;
}

function readConfigFile(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([`config file ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`]);
  }
  try {
    return parseToml(text) as Tree;
  } catch (err) {
    const where = err instanceof TomlError ? ` at line ${err.line}, column ${err.column}` : "";
    throw new ConfigError([`config file ${file}: not valid TOML${where}`]);
  }
}

function pickConfigFile(input: LoadInput): string | null {
  const explicit = input.flags?.["--config"] ?? input.env?.SNAPDB_CONFIG;
  if (explicit) return resolve(explicit);
  const fallback = input.defaultConfigFile ?? DEFAULT_CONFIG_FILE;
  return existsSync(fallback) ? fallback : null;
}

/** The values of a union of literals (log.level, scheduler.catchUp, …), to name them in the error; null for other unions. */
function literalChoices(schema: unknown): (string | number | boolean)[] | null {
  const members = (schema as { anyOf?: { const?: unknown }[] } | undefined)?.anyOf;
  if (!members?.length || !members.every((m) => ["string", "number", "boolean"].includes(typeof m.const))) return null;
  return members.map((m) => m.const as string | number | boolean);
}

const pointerToDotted = (pointer: string) => pointer.replace(/^\//, "").replaceAll("/", ".");

function schemaProblems(candidate: Tree, origin: (path: string) => string): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  const report = (pointer: string, message: string, type?: ValueErrorType, schema?: unknown) => {
    const path = pointerToDotted(pointer);
    if (seen.has(path)) return; // the first complaint about a value is the useful one
    seen.add(path);
    const choices = type === ValueErrorType.Union ? literalChoices(schema) : null;
    const text =
      type === ValueErrorType.ObjectAdditionalProperties
        ? "unknown key"
        : type === ValueErrorType.ObjectRequiredProperty
          ? "is required"
          : choices
            ? `must be one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`
            : message;
    problems.push(`${path || "(root)"}${origin(path)}: ${text}`);
  };
  // The managed storage union gives poor messages as a whole: check the chosen member.
  const managed = candidate.managedStorage;
  const member = isPlainObject(managed) && managed.type === "s3" ? S3ManagedStorage : LocalManagedStorage;
  if (isPlainObject(managed) && managed.type !== "s3" && managed.type !== "local") {
    report("/managedStorage/type", 'must be "local" or "s3"');
  } else {
    for (const e of Value.Errors(member, managed)) report(`/managedStorage${e.path}`, e.message, e.type, e.schema);
  }
  const rest = { ...ConfigSchema, properties: { ...ConfigSchema.properties } } as typeof ConfigSchema;
  delete (rest.properties as Record<string, unknown>).managedStorage;
  (rest as { required?: string[] }).required = rest.required?.filter((k) => k !== "managedStorage");
  const { managedStorage: _m, ...others } = candidate;
  for (const e of Value.Errors(rest, others)) {
    report(e.path, e.message, e.type, e.schema);
  }
  return problems;
}

/** A plain address (`ops@example.com`) or a display form (`snapdb <ops@example.com>`). */
const EMAIL = /^(?:[^<>\r\n]*<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/;

function semanticProblems(c: Tree, origin: (path: string) => string): string[] {
  const problems: string[] = [];
  const add = (path: string, message: string) => problems.push(`${path}${origin(path)}: ${message}`);
  const str = (path: string) => {
    const v = getPath(c, path);
    return typeof v === "string" ? v : "";
  };
  const listenText = getPath(c, "listen");
  if (typeof listenText === "string") {
    const listen = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(listenText);
    // Port 0 asks the OS for a free port (tests); the log line "snapdb listening" names it.
    if (!listen || Number(listen[2]) > 65535) {
      add("listen", "must be HOST:PORT with a port from 0 to 65535, e.g. 127.0.0.1:8484");
    }
  }
  const secret = str("auth.jwtSecret");
  if (secret && secret.length < 32) {
    add("auth.jwtSecret", "must be at least 32 characters (an HS256 key shorter than its hash is guessable)");
  }
  const publicUrl = str("http.publicUrl");
  if (publicUrl && !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(publicUrl)) add("http.publicUrl", "must be an http(s) URL, e.g. https://backup.example.com");
  const publicKeyFile = str("auth.publicKeyFile");
  const jwksUrl = str("auth.jwksUrl");
  if (publicKeyFile && jwksUrl) add("auth.jwksUrl", "set either auth.publicKeyFile or auth.jwksUrl, not both");
  if (jwksUrl && !/^https?:\/\/\S+$/.test(jwksUrl)) add("auth.jwksUrl", "must be an http(s) URL");
  if (publicKeyFile && !existsSync(publicKeyFile)) add("auth.publicKeyFile", `file ${publicKeyFile} does not exist`);
  const stsEndpoint = str("storage.stsEndpoint");
  if (stsEndpoint && !/^https?:\/\/[^\s/?#@]+(\/[^\s?#]*)?$/.test(stsEndpoint)) {
    add("storage.stsEndpoint", "must be an http(s) URL, e.g. https://sts.eu-west-1.amazonaws.com (empty = AWS STS)");
  }
  const roleGlobs = getPath(c, "storage.allowedRoleArns");
  if (Array.isArray(roleGlobs)) {
    roleGlobs.forEach((glob, i) => {
      if (typeof glob === "string" && !glob.startsWith("arn:")) add(`storage.allowedRoleArns.${i}`, "must be a role ARN glob, e.g. arn:aws:iam::123456789012:role/snapdb-*");
    });
  }
  const smtpFrom = str("notify.smtp.from");
  if (smtpFrom && !EMAIL.test(smtpFrom)) add("notify.smtp.from", "must be an e-mail address, e.g. snapdb@example.com");
  if (str("notify.smtp.password") && !str("notify.smtp.username")) add("notify.smtp.username", "is required when notify.smtp.password is set");
  for (const key of ["storage.allowedLocalRoots", "sources.allowedSqliteRoots", "storage.allowedRestoreRoots"]) {
    const roots = getPath(c, key);
    if (!Array.isArray(roots)) continue;
    roots.forEach((root, i) => {
      if (typeof root === "string" && !isAbsolute(root)) add(`${key}.${i}`, "must be an absolute path");
    });
  }
  for (const key of ["network.denyCidrs", "network.allowCidrs"]) {
    const list = getPath(c, key);
    if (!Array.isArray(list)) continue;
    list.forEach((cidr, i) => {
      if (typeof cidr === "string" && !parseCidr(cidr)) add(`${key}.${i}`, `${JSON.stringify(cidr)} is not a CIDR range (e.g. 10.0.0.0/8, fd00::/8) or an IP address`);
    });
  }
  return problems;
}

/** Loads the configuration once: defaults < TOML file < SNAPDB_* env < flags; validated. */
export function loadConfig(input: LoadInput = {}): LoadedConfig {
  const env = input.env ?? {};
  const origins = new Map<string, string>();
  const file = pickConfigFile(input);
  let layered: Tree = {};
  if (file) {
    layered = readConfigFile(file);
    for (const p of leafPaths(layered)) origins.set(p, `file ${file}`);
  }
  for (const b of ENV_BINDINGS) {
    const text = env[b.env];
    if (text === undefined || text === "") continue;
    setPath(layered, b.path, parseText(text, b.parse));
    origins.set(b.path, `env ${b.env}`);
  }
  for (const [flag, path] of Object.entries(FLAG_BINDINGS)) {
    const text = input.flags?.[flag];
    if (text === undefined) continue;
    setPath(layered, path, text);
    origins.set(path, `flag ${flag}`);
  }
  const origin = (path: string) => {
    const from = origins.get(path) ?? [...origins.keys()].find((k) => path.startsWith(`${k}.`) || k.startsWith(`${path}.`));
    return from ? ` (from ${origins.get(path) ?? origins.get(from)})` : "";
  };

  const dataDirRaw = layered.dataDir;
  const dataDir = typeof dataDirRaw === "string" && dataDirRaw ? resolve(dataDirRaw) : resolve(DEFAULT_DATA_DIR);
  const candidate = deepMerge(defaultsFor(dataDir, getPath(layered, "managedStorage.type")), layered);
  // Report everything at once: the semantic checks look only at values of the right type.
  // deepMerge drops `__proto__` & co. (they would reach the prototype): name them here.
  const problems = [...unsafeKeyPaths(layered).map((p) => `${p}${origin(p)}: unknown key`), ...schemaProblems(candidate, origin), ...semanticProblems(candidate, origin)];
  if (problems.length) throw new ConfigError(problems);

  const config = candidate as unknown as Config;
  config.dataDir = dataDir;
  config.masterKeyFile = resolve(config.masterKeyFile);
  config.auth.jwtSecretFile = resolve(config.auth.jwtSecretFile);
  if (config.auth.publicKeyFile) config.auth.publicKeyFile = resolve(config.auth.publicKeyFile);
  if (config.managedStorage.type === "local") config.managedStorage.path = resolve(config.managedStorage.path);
  return { config, file };
}
