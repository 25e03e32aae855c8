/**
 * Where a config value can come from, lowest precedence first: the TOML file, then
 * SNAPDB_* environment variables, then command-line flags. Each maps to a dotted path.
 */
export type Parse = "string" | "integer" | "boolean" | "list" | "labels";

export interface EnvBinding {
  env: string;
  path: string;
  parse: Parse;
}

export const ENV_BINDINGS: EnvBinding[] = [
  { env: "SNAPDB_LISTEN", path: "listen", parse: "string" },
  { env: "SNAPDB_DATA_DIR", path: "dataDir", parse: "string" },
  { env: "SNAPDB_MASTER_KEY_FILE", path: "masterKeyFile", parse: "string" },
  { env: "SNAPDB_LOG_LEVEL", path: "log.level", parse: "string" },
  { env: "SNAPDB_JWT_SECRET", path: "auth.jwtSecret", parse: "string" },
  { env: "SNAPDB_JWT_SECRET_FILE", path: "auth.jwtSecretFile", parse: "string" },
  { env: "SNAPDB_JWT_AUDIENCE", path: "auth.audience", parse: "string" },
  { env: "SNAPDB_JWT_ISSUER", path: "auth.issuer", parse: "string" },
  { env: "SNAPDB_JWT_ORG_CLAIM", path: "auth.orgClaim", parse: "string" },
  { env: "SNAPDB_JWT_PUBLIC_KEY_FILE", path: "auth.publicKeyFile", parse: "string" },
  { env: "SNAPDB_JWT_JWKS_URL", path: "auth.jwksUrl", parse: "string" },
  { env: "SNAPDB_METRICS_PUBLIC", path: "http.metricsPublic", parse: "boolean" },
  { env: "SNAPDB_BODY_LIMIT_BYTES", path: "http.bodyLimitBytes", parse: "integer" },
  { env: "SNAPDB_PUBLIC_URL", path: "http.publicUrl", parse: "string" },
  { env: "SNAPDB_HTTP_IDLE_TIMEOUT_SECONDS", path: "http.idleTimeoutSeconds", parse: "integer" },
  { env: "SNAPDB_ALLOWED_LOCAL_ROOTS", path: "storage.allowedLocalRoots", parse: "list" },
  { env: "SNAPDB_STS_ENDPOINT", path: "storage.stsEndpoint", parse: "string" },
  { env: "SNAPDB_ALLOWED_ROLE_ARNS", path: "storage.allowedRoleArns", parse: "list" },
  { env: "SNAPDB_ALLOWED_RESTORE_ROOTS", path: "storage.allowedRestoreRoots", parse: "list" },
  { env: "SNAPDB_ALLOWED_SQLITE_ROOTS", path: "sources.allowedSqliteRoots", parse: "list" },
  { env: "SNAPDB_NETWORK_DENY_CIDRS", path: "network.denyCidrs", parse: "list" },
  { env: "SNAPDB_NETWORK_ALLOW_CIDRS", path: "network.allowCidrs", parse: "list" },
  { env: "SNAPDB_MAX_TOKEN_LIFETIME_SECONDS", path: "auth.maxTokenLifetimeSeconds", parse: "integer" },
  { env: "SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG", path: "runner.maxConcurrentPerOrg", parse: "integer" },
  { env: "SNAPDB_RUNNER_MAX_TIMEOUT_SECONDS", path: "runner.maxTimeoutSeconds", parse: "integer" },
  { env: "SNAPDB_RUNNER_RESTORE_TIMEOUT_SECONDS", path: "runner.restoreTimeoutSeconds", parse: "integer" },
  { env: "SNAPDB_RUNNER_PARTS_CONCURRENCY", path: "runner.partsConcurrency", parse: "integer" },
  { env: "SNAPDB_RUNNER_MAX_CONCURRENT", path: "runner.maxConcurrent", parse: "integer" },
  { env: "SNAPDB_RUNNER_LEASE_SECONDS", path: "runner.leaseSeconds", parse: "integer" },
  { env: "SNAPDB_STORE_URL", path: "store.url", parse: "string" },
  { env: "SNAPDB_NODE_LABELS", path: "node.labels", parse: "labels" },
  { env: "SNAPDB_RUNNER_RETRY_BASE_SECONDS", path: "runner.retryBaseSeconds", parse: "integer" },
  { env: "SNAPDB_RUNNER_SHUTDOWN_GRACE_SECONDS", path: "runner.shutdownGraceSeconds", parse: "integer" },
  { env: "SNAPDB_SCHEDULER_CATCH_UP", path: "scheduler.catchUp", parse: "string" },
  { env: "SNAPDB_NOTIFY_STALE_CHECK_SECONDS", path: "notify.staleCheckSeconds", parse: "integer" },
  { env: "SNAPDB_NOTIFY_RETRY_BASE_SECONDS", path: "notify.retryBaseSeconds", parse: "integer" },
  { env: "SNAPDB_SMTP_HOST", path: "notify.smtp.host", parse: "string" },
  { env: "SNAPDB_SMTP_PORT", path: "notify.smtp.port", parse: "integer" },
  { env: "SNAPDB_SMTP_SECURE", path: "notify.smtp.secure", parse: "boolean" },
  { env: "SNAPDB_SMTP_REQUIRE_TLS", path: "notify.smtp.requireTLS", parse: "boolean" },
  { env: "SNAPDB_SMTP_USERNAME", path: "notify.smtp.username", parse: "string" },
  { env: "SNAPDB_SMTP_PASSWORD", path: "notify.smtp.password", parse: "string" },
  { env: "SNAPDB_SMTP_FROM", path: "notify.smtp.from", parse: "string" },
];

/** Flags that override config (the rest of a command's flags are its own). */
export const FLAG_BINDINGS: Record<string, string> = {
  "--listen": "listen",
  "--data-dir": "dataDir",
  "--master-key-file": "masterKeyFile",
  "--log-level": "log.level",
};

/**
 * Turns text into the type the path wants; text that does not parse is passed through
 * unchanged so that validation reports it with its path and origin.
 */
export function parseText(text: string, parse: Parse): unknown {
  switch (parse) {
    case "string":
      return text;
    case "integer":
      return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
    case "boolean":
      if (/^(true|1|yes|on)$/i.test(text.trim())) return true;
      if (/^(false|0|no|off)$/i.test(text.trim())) return false;
      return text;
    case "list":
      return text
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
    case "labels": {
      // `k=v,k=v`; an item without `=` is passed on as is for validation to name.
      const pairs = (parseText(text, "list") as string[]).map((item) => item.split("=").map((s) => s.trim()));
      if (pairs.some((p) => p.length !== 2 || !p[0])) return text;
      return Object.fromEntries(pairs);
    }
  }
}
