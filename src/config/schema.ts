import { Type as T, type Static } from "@sinclair/typebox";

/**
 * The daemon's configuration. Keys are camelCase, as in the TOML file. Every key has an
 * embedded default (see defaults.ts), so a daemon with no config at all runs.
 */
const Str = (opts: Record<string, unknown> = {}) => T.String({ minLength: 1, ...opts });

export const LocalManagedStorage = T.Object({ type: T.Literal("local"), path: Str() }, { additionalProperties: false });

export const S3ManagedStorage = T.Object(
  {
    type: T.Literal("s3"),
    endpoint: T.String(),
    region: Str(),
    bucket: Str(),
    prefix: T.String(),
    forcePathStyle: T.Boolean(),
    accessKeyId: T.String(),
    secretAccessKey: T.String(),
  },
  { additionalProperties: false },
);

export const ConfigSchema = T.Object(
  {
    listen: Str(),
    dataDir: Str(),
    masterKeyFile: Str(),
    log: T.Object({ level: T.Union([T.Literal("debug"), T.Literal("info"), T.Literal("warn"), T.Literal("error")]) }, { additionalProperties: false }),
    auth: T.Object(
      {
        audience: Str(),
        issuer: T.String(),
        orgClaim: Str(),
        jwtSecret: T.String(),
        jwtSecretFile: Str(),
        publicKeyFile: T.String(),
        jwksUrl: T.String(),
        /** A token whose lifetime (exp - iat, or exp - now without iat) is longer is refused. */
        maxTokenLifetimeSeconds: T.Integer({ minimum: 60, maximum: 10 * 365 * 86400 }),
      },
      { additionalProperties: false },
    ),
    http: T.Object(
      {
        bodyLimitBytes: T.Integer({ minimum: 1024, maximum: 64 * 1024 * 1024 }),
        metricsPublic: T.Boolean(),
        /** How clients reach the daemon (download links of local destinations); `http://{listen}` when empty. */
        publicUrl: T.String(),
        /**
         * A connection that sends and receives nothing for this long is closed (Bun's ceiling is
         * 255 s). Also while a handler works: the few that may work longer (a file's verify) lift it.
         */
        idleTimeoutSeconds: T.Integer({ minimum: 1, maximum: 255 }),
      },
      { additionalProperties: false },
    ),
    managedStorage: T.Union([LocalManagedStorage, S3ManagedStorage]),
    storage: T.Object(
      {
        allowedLocalRoots: T.Array(Str()),
        /** The only STS endpoint that ever receives a request signed with the daemon's own identity; empty = AWS STS. */
        stsEndpoint: T.String(),
        /** Globs a tenant's assumeRole `roleArn` must match; empty = any role. */
        allowedRoleArns: T.Array(Str()),
        /** Where point-in-time restores may build PostgreSQL data directories; empty = nowhere. */
        allowedRestoreRoots: T.Array(Str()),
      },
      { additionalProperties: false },
    ),
    /** The host boundary for tenant data sources: which files they may name. */
    sources: T.Object({ allowedSqliteRoots: T.Array(Str()) }, { additionalProperties: false }),
    /** Outbound policy for every tenant-given host (data sources, S3 endpoints, webhook URLs), checked on the resolved address. */
    network: T.Object({ denyCidrs: T.Array(Str()), allowCidrs: T.Array(Str()) }, { additionalProperties: false }),
    runner: T.Object(
      {
        maxConcurrent: T.Integer({ minimum: 1, maximum: 64 }),
        retryBaseSeconds: T.Integer({ minimum: 1, maximum: 3600 }),
        shutdownGraceSeconds: T.Integer({ minimum: 0, maximum: 3600 }),
        /** Jobs of one organisation running at once; orgs with queued work take turns. */
        maxConcurrentPerOrg: T.Integer({ minimum: 1, maximum: 64 }),
        /** Ceiling for a policy's timeoutSeconds: refused above it at create/update, cut to it at run time. */
        maxTimeoutSeconds: T.Integer({ minimum: 1, maximum: 30 * 86400 }),
        /** How long one restore may run before it is stopped and fails TIMEOUT. */
        restoreTimeoutSeconds: T.Integer({ minimum: 1, maximum: 30 * 86400 }),
        /** Parts of one whole-server backup (its databases, its globals) dumped at once; never more than maxConcurrent. */
        partsConcurrency: T.Integer({ minimum: 1, maximum: 16 }),
        /** A running job's claim: renewed while it runs; a node silent this long has lost it (fleet mode). */
        leaseSeconds: T.Integer({ minimum: 5, maximum: 3600 }),
      },
      { additionalProperties: false },
    ),
    /** Where the metadata lives: empty = the embedded SQLite file in dataDir; `postgres://…` = a store shared by a fleet of daemons. */
    store: T.Object({ url: T.String({ pattern: "^(|postgres(ql)?://.+)$" }) }, { additionalProperties: false }),
    /** This daemon as a fleet node: labels that data sources' `runOn.labels` match. */
    node: T.Object({ labels: T.Record(T.String({ pattern: "^[A-Za-z0-9_.-]{1,63}$" }), T.String({ maxLength: 253 })) }, { additionalProperties: false }),
    scheduler: T.Object({ catchUp: T.Union([T.Literal("one"), T.Literal("none")]) }, { additionalProperties: false }),
    notify: T.Object(
      {
        /** How often data sources are checked for backups that stopped (backup.stale). */
        staleCheckSeconds: T.Integer({ minimum: 1, maximum: 3600 }),
        /** First retry delay of a failed delivery; then doubling, up to an hour, for 24 h. */
        retryBaseSeconds: T.Integer({ minimum: 1, maximum: 3600 }),
        /** The operator's mail relay for `email` channels; empty host = no e-mail channels. */
        smtp: T.Object(
          {
            host: T.String(),
            port: T.Integer({ minimum: 1, maximum: 65535 }),
            /** TLS from the first byte (port 465); false = STARTTLS when the server offers it. */
            secure: T.Boolean(),
            /** Refuse to send (and to AUTH) unless the connection is TLS: STARTTLS is required, not optional. */
            requireTLS: T.Boolean(),
            username: T.String(),
            password: T.String(),
            from: T.String(),
          },
          { additionalProperties: false },
        ),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

export type Config = Static<typeof ConfigSchema>;

/** Dotted paths of values that are secrets: masked in --print-config, never logged. */
export const SECRET_PATHS = ["auth.jwtSecret", "managedStorage.secretAccessKey", "notify.smtp.password"] as const;
/** URLs that may carry a password (user-info or a query parameter): printed with it masked. */
export const SECRET_URL_PATHS = ["store.url"] as const;
