import { t } from "elysia";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { Restore } from "./serialize.ts";

export const CreateRestoreBody = t.Object(
  {
    backupJobId: t.String({ minLength: 1, maxLength: 64, description: "A succeeded backup job whose file is still stored." }),
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
