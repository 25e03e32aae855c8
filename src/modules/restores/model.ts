import { t } from "elysia";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { Restore } from "./serialize.ts";

export const CreateRestoreBody = t.Object(
  {
    backupJobId: t.Optional(t.String({ minLength: 1, maxLength: 64, description: "A restore of a dump: a succeeded backup job whose file is still stored. Leave out for a point-in-time restore." })),
    targetDataSourceId: t.Optional(
      t.String({ minLength: 1, maxLength: 64, description: "Where to restore; defaults to the backup's own data source. Same engine family (mysql and mariadb are one)." }),
    ),
    targetDatabase: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 63,
        description: "Network engines only: restore into this database on the target's server instead of the data source's own; created if missing.",
      }),
    ),
    databases: t.Optional(
      t.Array(t.String({ minLength: 1, maxLength: 255 }), {
        minItems: 1,
        maxItems: 1000,
        description:
          "A whole-server backup only: which of its databases to restore (default: all it holds). The globals (roles/users, grants) are always restored first; each database is created on the target's server under its own name (409 for one that exists and is not empty, unless clean).",
      }),
    ),
    clean: t.Optional(
      t.Boolean({
        default: false,
        description:
          "Replace what the target holds. Without it a non-empty target is refused (409). PostgreSQL: pg_restore --clean --if-exists; MySQL/MariaDB: the target database's tables and views are dropped first; SQLite: the file is replaced atomically (only ever a SQLite database or an empty file; any other file at the path is refused, clean or not).",
      }),
    ),
    dataSourceId: t.Optional(t.String({ minLength: 1, maxLength: 64, description: "Point-in-time restore: the PostgreSQL data source (with a physical policy) whose archive to restore from." })),
    targetTime: t.Optional(
      t.String({
        format: "date-time",
        maxLength: 64,
        examples: ["2026-11-26T10:00:00.000Z"],
        description: "Point-in-time restore: the instant to recover to (RFC 3339), inside the data source's recovery window (else 400, with the window in the message).",
      }),
    ),
    targetDirectory: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 4096,
        examples: ["/srv/pg-restores/orders-before-migration"],
        description:
          "Point-in-time restore: where to build the PostgreSQL data directory, on the daemon's host, inside one of the operator's `storage.allowedRestoreRoots` (else 400); " +
          "empty or not there yet (else 409). It is created with mode 0700, owned by the daemon's user: chown it to the user PostgreSQL runs as before starting PostgreSQL on it.",
      }),
    ),
    walDelivery: t.Optional(
      t.Union([t.Literal("copy"), t.Literal("fetch")], {
        description:
          "Point-in-time restore: how PostgreSQL gets the WAL. `copy` (default): the WAL the recovery needs is copied, decrypted, into `pg_wal_archive/` inside the directory and " +
          "`restore_command = 'cp pg_wal_archive/%f %p'`: PostgreSQL needs nothing of snapdb's. `fetch`: nothing is copied; `restore_command` runs `snapdb wal-fetch` " +
          "(the daemon's own binary, with its config file and data dir) for each file as PostgreSQL asks for it, also while the daemon runs. The OS user PostgreSQL runs as " +
          "must then be able to read snapdb's config, data dir (store) and master key: e.g. snapdb running as the postgres user.",
      }),
    ),
  },
  { additionalProperties: false },
);

export const RestoresListQuery = t.Object(
  {
    ...PageQuery,
    dataSourceId: t.Optional(t.String({ maxLength: 64, description: "Restores into this data source or from backups of it." })),
    planId: t.Optional(t.String({ maxLength: 64, description: "The runs of this restore plan." })),
    status: t.Optional(t.Union(["queued", "running", "succeeded", "failed", "canceled"].map((s) => t.Literal(s)))),
  },
  { additionalProperties: false },
);

export const RestoreIdParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const RestorePage = pageOf(Restore);
