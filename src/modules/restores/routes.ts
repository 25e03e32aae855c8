import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia } from "elysia";
import { sqlitePathPolicy } from "../../engines/sqlite-path.ts";
import type { HttpKit } from "../../http/kit.ts";
import { OutboundPolicy } from "../../net/outbound-policy.ts";
import type { JobControl } from "../../runner/control.ts";
import { restoreDirectoryPolicy } from "../../runner/pitr-restore.ts";
import { CreateRestoreBody, RestoreIdParams, RestorePage, RestoresListQuery } from "./model.ts";
import { Restore } from "./serialize.ts";
import { cancelRestore, createRestore, findRestore, listRestores, presentRestore } from "./service.ts";

const LIST = "restores";
const tags = [TAGS.restores.name];

export function restoreRoutes(kit: HttpKit, control: JobControl) {
  const deps = {
    storage: kit.storage,
    secrets: kit.secrets,
    sqlitePaths: sqlitePathPolicy(kit.config),
    outbound: OutboundPolicy.fromConfig(kit.config.network),
    restoreDirs: restoreDirectoryPolicy(kit.config),
  };
  return new Elysia({ name: "snapdb-restores" })
    .use(kit.auth)
    .post(
      "/restores",
      async ({ body, ctx, set }) => {
        const row = await createRestore(ctx, deps, body);
        control.wakeNow();
        set.status = 202;
        return presentRestore(row, control);
      },
      {
        scope: "backup.restore",
        body: CreateRestoreBody,
        response: { 202: Restore },
        detail: {
          summary: "Restore a backup into a data source, or a PostgreSQL source to a point in time (queued; 409 when the target is not empty)",
          description:
            "Streams the stored file back: storage → sha256 check → age decrypt → decompress → pg_restore (one transaction), the mysql/mariadb client, or a SQLite file renamed into place. " +
            "The target defaults to the backup's data source; another data source must be of the same engine family (400 otherwise). Failure codes in `error.code`: " +
            "CHECKSUM_MISMATCH, DECRYPT_FAILED, DECOMPRESS_FAILED, RESTORE_FAILED, RESTORE_TOOL_MISSING, TARGET_NOT_EMPTY, DATABASE_CREATE_FAILED, BACKUP_FILE_MISSING, " +
            "PATH_NOT_ALLOWED (a SQLite path outside the operator's allowed roots, checked again when the restore runs), INVALID_TARGET (e.g. a SQLite path holding a file that is not a SQLite database: never replaced), " +
            "AUTH_FAILED, CONNECTION_REFUSED, CANCELED, INTERRUPTED, TIMEOUT (ran longer than the daemon's runner.restoreTimeoutSeconds, default 86400), …; the message says what state the target was left in. " +
            "Restores share the runner's slots with backups: one job per data source, at most runner.maxConcurrentPerOrg (default 1) of one org at once, orgs taking turns. " +
            'A whole-server backup (`database: "*"`) restores onto the target\'s server: the globals first (roles/users that exist are tolerated and listed in `notes`; other errors: GLOBALS_FAILED), then each of `databases` (default all) under its own name, created as it was when missing; a non-empty one is a 409 unless clean.\n\n' +
            "**Point-in-time restore** (PostgreSQL sources with a physical policy): `{ dataSourceId, targetTime, targetDirectory }` instead of `backupJobId`. " +
            "`targetTime` must lie in `GET /data-sources/{id}/recovery-window` (else 400, the message gives the window). The restore builds a data directory at `targetDirectory`: " +
            "the newest base backup that ended at or before `targetTime`, unpacked, the WAL the recovery needs copied into its `pg_wal_archive/`, and postgresql.auto.conf set to " +
            "`restore_command = 'cp pg_wal_archive/%f %p'`, `recovery_target_time`, `recovery_target_action = 'promote'`, with `recovery.signal`. " +
            "`chown -R postgres: <dir>` and start PostgreSQL (the base backup's major version) on it: it replays the WAL, stops at `targetTime` and is promoted. " +
            "It counts as a restore of its data source (one job at a time per source). Failure codes add OUTSIDE_WINDOW, PATH_NOT_ALLOWED, TARGET_NOT_EMPTY; a failed restore removes what it wrote.",
          tags,
        },
      },
    )
    .get(
      "/restores",
      async ({ query, ctx }) => {
        const page = await listRestores(ctx, query, kit.cursors.request(LIST, ctx.orgId, query));
        return kit.cursors.answer(LIST, ctx.orgId, { items: page.items.map((r) => presentRestore(r, control)), hasMore: page.hasMore });
      },
      { scope: "backup.read", query: RestoresListQuery, response: { 200: RestorePage }, detail: { summary: "List restores, newest first", tags } },
    )
    .get(
      "/restores/:id",
      async ({ params, ctx }) => {
        return presentRestore(await findRestore(ctx.db, ctx.orgId, params.id), control);
      },
      { scope: "backup.read", params: RestoreIdParams, response: { 200: Restore }, detail: { summary: "One restore, with live progress while it runs", tags } },
    )
    .post(
      "/restores/:id/cancel",
      async ({ params, ctx, set }) => {
        const row = await cancelRestore(ctx, control, params.id);
        set.status = 202;
        return presentRestore(row, control);
      },
      {
        scope: "backup.restore",
        params: RestoreIdParams,
        response: { 202: Restore },
        detail: {
          summary: "Cancel a queued or running restore (its tool is stopped; the target is left as the failure message says)",
          description:
            "A queued restore is canceled at once. A running one is stopped: a SQLite target stays as it was (the temp file is removed), a PostgreSQL target too (pg_restore's single transaction is rolled back); a MySQL/MariaDB target may be partially restored, which the restore's error message then says.",
          tags,
        },
      },
    );
}
