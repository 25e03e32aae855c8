import { t } from "elysia";
import { Int } from "../../http/json-int.ts";
import { oneOf } from "../../http/one-of.ts";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { SOURCE_CHECK_CODES } from "../../lib/failure-codes.ts";

const Engine = t.Union([t.Literal("postgres"), t.Literal("mysql"), t.Literal("mariadb"), t.Literal("sqlite")], {
  description: "`postgres`, `mysql` and `mariadb` are network engines (host, port, database); `sqlite` is a file (`path`).",
});

const SslMode = t.Union([t.Literal("disable"), t.Literal("prefer"), t.Literal("require"), t.Literal("verify-ca"), t.Literal("verify-full")], {
  description: "TLS to the server, as libpq names it (default `prefer`). Network engines only.",
});

const Options = t.Object(
  {
    sslMode: t.Optional(SslMode),
    connectTimeoutSeconds: t.Optional(t.Integer({ minimum: 1, maximum: 120, description: "Verify's connect timeout (default 10)." })),
    includeRolePasswords: t.Optional(
      t.Boolean({
        description:
          '`postgres` with `database: "*"` only: the globals file keeps the roles\' password hashes (pg_dumpall without `--no-role-passwords`; the login must then be a superuser). Default false: roles are restored without passwords.',
      }),
    ),
  },
  { additionalProperties: false, description: "Engine-specific settings. `sqlite` takes none." },
);

const Labels = t.Record(t.String({ minLength: 1, maxLength: 63 }), t.String({ maxLength: 256 }), {
  description: "Free-form string map (at most 64 entries; keys 1–63 chars of `A-Za-z0-9._/-`).",
});

const RunOn = t.Object(
  {
    labels: t.Record(t.String(), t.String(), {
      description: "1 to 16 labels; keys and values 1–63 chars of `A-Za-z0-9_.-`. A node runs the source's jobs only if its `node.labels` hold every one with an equal value.",
      examples: [{ host: "db1" }],
    }),
  },
  { additionalProperties: false },
);

const fields = {
  name: t.String({ minLength: 1, maxLength: 200, description: "Unique within the organisation." }),
  host: t.String({
    minLength: 1,
    maxLength: 255,
    description:
      "Network engines: a host name or an IP address (IPv6 may be in brackets); never a unix socket path. Before every connection (verify, backup, restore) the daemon resolves it and checks every address against its outbound network policy (`network.denyCidrs`, by default 169.254.0.0/16 and fd00:ec2::254/128, the cloud metadata service; `network.allowCidrs` when set), then connects to that checked address. A refused address fails like an unreachable host: verify answers `CONNECTION_REFUSED`.",
  }),
  port: t.Integer({ minimum: 1, maximum: 65535, description: "Network engines; default 5432 (postgres) or 3306 (mysql, mariadb)." }),
  database: t.String({
    minLength: 1,
    maxLength: 255,
    description:
      "Network engines: the database to back up, taken literally (spaces, quotes and unicode are fine; control characters are not). A value like `dbname=x host=y` or `postgresql://…` is a database of that name, never a connection string. " +
      "`*` is the whole server: every database (PostgreSQL: all that accept connections, templates left out; MySQL/MariaDB: all but information_schema, performance_schema, mysql and sys), found anew at every run, minus `excludeDatabases`, plus the server's roles/users and grants, each its own file of one backup job (`parts`).",
  }),
  excludeDatabases: t.Array(t.String({ minLength: 1, maxLength: 255, description: "A database name, or a glob: `*` any run of characters, `?` one character; case-sensitive." }), {
    maxItems: 100,
    description: '`database: "*"` only: databases left out of the whole-server backup, by name or glob (e.g. `["scratch_*", "test?"]`). Default none.',
  }),
  path: t.String({
    minLength: 1,
    maxLength: 4096,
    description:
      "`sqlite`: absolute, normalized path of the database file on the daemon's host. It must resolve (symlinks followed) under a directory the operator allows " +
      "your organisation (`sources.allowedSqliteRoots`, where `{orgId}` stands for the organisation's id; with none, SQLite sources are refused) and never onto the daemon's own files " +
      "(its data dir, keys, backup directories). The file, its `-wal`, `-shm` and `-journal` must be plain files (no symlink, no hard link), and every directory between the allowed root " +
      "and the file must be writable only by the daemon's user (or root): a file directly in the root always qualifies. " +
      "Checked when saved (400 on `/path`) and again at every verify, backup and restore.",
  }),
  options: Options,
  labels: Labels,
  runOn: t.Union([RunOn, t.Null()], {
    description:
      "Fleet mode: which nodes may run this source's jobs (its backups, and restores and restore-plan runs into it); null (the default): any node. " +
      "On a shared PostgreSQL store (`store.url`) a `sqlite` source must carry it (its file lives on one host): 400 on `/runOn` without it.",
  }),
};

export const DataSourceCreate = t.Object(
  {
    name: fields.name,
    engine: Engine,
    host: t.Optional(fields.host),
    port: t.Optional(fields.port),
    database: t.Optional(fields.database),
    excludeDatabases: t.Optional(fields.excludeDatabases),
    path: t.Optional(fields.path),
    options: t.Optional(fields.options),
    labels: t.Optional(fields.labels),
    runOn: t.Optional(fields.runOn),
  },
  { additionalProperties: false },
);

export const DataSourceUpdate = t.Object(
  {
    name: t.Optional(fields.name),
    engine: t.Optional(t.Union([Engine], { description: "Cannot change; accepted when equal to the current engine." })),
    host: t.Optional(fields.host),
    port: t.Optional(fields.port),
    database: t.Optional(fields.database),
    excludeDatabases: t.Optional(t.Union([fields.excludeDatabases], { description: "Replaces the whole list." })),
    path: t.Optional(fields.path),
    options: t.Optional(t.Union([fields.options], { description: "Replaces the whole options object." })),
    labels: t.Optional(t.Union([fields.labels], { description: "Replaces the whole label map." })),
    runOn: t.Optional(t.Union([RunOn, t.Null()], { description: "Replaces the placement; null: any node." })),
  },
  { additionalProperties: false },
);

export const CredentialsInput = t.Object(
  {
    username: t.String({
      minLength: 1,
      maxLength: 255,
      pattern: "^[^\\x00-\\x1f\\x7f]+$",
      description: "Who snapdb logs in as. Any characters but control characters: it reaches the tools as a quoted value, never as an option.",
    }),
    password: t.String({ maxLength: 4096, description: "Write-only: stored encrypted, never returned." }),
  },
  { additionalProperties: false },
);

export const VerifyOutcome = t.Object(
  {
    ok: t.Boolean(),
    latencyMs: t.Optional(Int({ description: "Connect + login + version query, ms." })),
    serverVersion: t.Optional(t.String({ examples: ["15.18"] })),
    error: t.Optional(
      t.Object({
        code: oneOf(SOURCE_CHECK_CODES),
        message: t.String(),
      }),
    ),
    databases: t.Optional(t.Array(t.String(), { description: '`database: "*"`: the databases a backup would take now (after `excludeDatabases`), in the order it takes them.' })),
    unreadable: t.Optional(
      t.Array(t.String(), {
        description:
          '`database: "*"`: those of `databases` the login cannot read (no CONNECT, tables it may not SELECT, …): a backup would fail on them (`ok: false`, `DATABASE_UNREADABLE`); grant access or exclude them.',
      }),
    ),
    warnings: t.Optional(
      t.Array(t.String(), {
        description:
          "PostgreSQL sources with a physical policy, when the login works: what base backups and WAL archiving still lack (the REPLICATION attribute, wal_level, the tools) " +
          "and max_slot_wal_keep_size = -1 (the replication slot may then fill the server's disk while archiving is stopped).",
      }),
    ),
    verifiedAt: t.String({ format: "date-time" }),
  },
  { $id: "#/components/schemas/DataSourceVerify", title: "DataSourceVerify" },
);

export const DataSource = t.Object(
  {
    id: t.String({ examples: ["ds_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    name: t.String(),
    engine: Engine,
    host: t.Union([t.String(), t.Null()]),
    port: t.Union([Int(), t.Null()]),
    database: t.Union([t.String(), t.Null()], { description: "`*`: the whole server." }),
    excludeDatabases: t.Array(t.String(), { description: "Databases a whole-server backup leaves out (names or globs); empty otherwise." }),
    path: t.Union([t.String(), t.Null()]),
    options: t.Record(t.String(), t.Unknown()),
    labels: t.Record(t.String(), t.String()),
    runOn: t.Union([RunOn, t.Null()], { description: "The nodes that may run its jobs (`GET /nodes`, their `labels`); null: any node." }),
    credentials: t.Union([t.Object({ username: t.String(), updatedAt: t.String({ format: "date-time" }) }), t.Null()], {
      description: "Who snapdb logs in as; the password is write-only and never returned.",
    }),
    lastVerify: t.Union([VerifyOutcome, t.Null()]),
    createdAt: t.String({ format: "date-time" }),
    updatedAt: t.String({ format: "date-time" }),
  },
  { $id: "#/components/schemas/DataSource", title: "DataSource" },
);

export const DataSourceQuery = t.Object(
  {
    ...PageQuery,
    engine: t.Optional(Engine),
    q: t.Optional(t.String({ minLength: 1, maxLength: 200, description: "Case-insensitive substring of the name." })),
  },
  { additionalProperties: false },
);

export const JobsQuery = t.Object({ ...PageQuery }, { additionalProperties: false });

export const DeleteQuery = t.Object(
  {
    cascade: t.Optional(
      t.Union([t.Literal("true"), t.Literal("false")], {
        description: "`true` also deletes the source's attachments, backup jobs and stored backup files.",
      }),
    ),
  },
  { additionalProperties: false },
);

export const IdParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const DataSourcePage = pageOf(DataSource);
