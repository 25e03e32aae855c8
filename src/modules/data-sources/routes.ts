import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia, t } from "elysia";
import { defaultEngineEnv } from "../../engines/registry.ts";
import { sqlitePathPolicy } from "../../engines/sqlite-path.ts";
import type { EngineEnv } from "../../engines/types.ts";
import type { HttpKit } from "../../http/kit.ts";
import { OutboundPolicy } from "../../net/outbound-policy.ts";
import { BackupJob } from "../jobs/serialize.ts";
import { pageOf } from "../../http/pagination.ts";
import { deleteCredentials, setCredentials } from "./credentials.ts";
import { CredentialsInput, DataSource, DataSourceCreate, DataSourcePage, DataSourceQuery, DataSourceUpdate, DeleteQuery, IdParams, JobsQuery, VerifyOutcome } from "./model.ts";
import { createDataSource, deleteDataSource, getDataSource, listDataSourceJobs, listDataSources, updateDataSource, type DeleteHooks, type SourceRules, type StoredBackupFile } from "./service.ts";
import { removeWithStorage } from "./files.ts";
import { verifyDataSource } from "./verify.ts";
import { getRecoveryWindow, RecoveryWindow } from "./recovery-window.ts";

const LIST = "data-sources";
const JOBS = "data-source-jobs";
const tags = [TAGS.dataSources.name];
const noContent = t.Void({ description: "No content" });

export interface DataSourceRouteOptions {
  /** Where verify looks for dump tools and how long it waits (default: the daemon's PATH, 10 s). */
  engineEnv?: EngineEnv;
}

export function dataSourceRoutes(kit: HttpKit, opts: DataSourceRouteOptions = {}) {
  const engineEnv = opts.engineEnv ?? defaultEngineEnv({ outbound: OutboundPolicy.fromConfig(kit.config.network) });
  const sqlitePaths = sqlitePathPolicy(kit.config);
  const rules: SourceRules = { sqlitePaths, fleet: kit.config.store.url !== "" };
  const left = (file: StoredBackupFile, error: unknown) => kit.logger.warn("a backup file of a deleted data source was left in storage", { ...file, error });
  const hooks: DeleteHooks = {
    removeBackupFiles: removeWithStorage(kit.storage, left),
    onFilesLeft: (files, error) => files.forEach((f) => left(f, error)),
  };
  return new Elysia({ name: "snapdb-data-sources" })
    .use(kit.auth)
    .post(
      "/data-sources",
      async ({ body, ctx, set }) => {
        set.status = 201;
        return createDataSource(ctx, rules, body);
      },
      {
        scope: "backup.write",
        body: DataSourceCreate,
        response: { 201: DataSource },
        detail: { summary: "Create a data source", tags },
      },
    )
    .get(
      "/data-sources",
      async ({ query, ctx }) => {
        const page = await listDataSources(ctx, query, kit.cursors.request(LIST, ctx.orgId, query));
        return kit.cursors.answer(LIST, ctx.orgId, page);
      },
      {
        scope: "backup.read",
        query: DataSourceQuery,
        response: { 200: DataSourcePage },
        detail: { summary: "List data sources, newest first", tags },
      },
    )
    .get("/data-sources/:id", async ({ params, ctx }) => getDataSource(ctx, params.id), {
      scope: "backup.read",
      params: IdParams,
      response: { 200: DataSource },
      detail: { summary: "Get a data source", tags },
    })
    .patch("/data-sources/:id", async ({ params, body, ctx }) => updateDataSource(ctx, rules, params.id, body), {
      scope: "backup.write",
      params: IdParams,
      body: DataSourceUpdate,
      response: { 200: DataSource },
      detail: { summary: "Update a data source (fields given replace the current ones; engine cannot change)", tags },
    })
    .delete(
      "/data-sources/:id",
      async ({ params, query, ctx, set }) => {
        await deleteDataSource(ctx, params.id, { cascade: query.cascade === "true" }, hooks);
        set.status = 204;
      },
      {
        scope: "backup.write",
        params: IdParams,
        query: DeleteQuery,
        response: { 204: noContent },
        detail: {
          summary: "Delete a data source",
          description: "409 while it has attachments or backup jobs, unless `?cascade=true`. Never while a job is queued or running.",
          tags,
        },
      },
    )
    .put(
      "/data-sources/:id/credentials",
      async ({ params, body, ctx, set }) => {
        await setCredentials(ctx, kit.secrets, params.id, body);
        set.status = 204;
      },
      {
        scope: "backup.write",
        params: IdParams,
        body: CredentialsInput,
        response: { 204: noContent },
        detail: { summary: "Set the login (write-only; stored encrypted under the master key)", tags },
      },
    )
    .delete(
      "/data-sources/:id/credentials",
      async ({ params, ctx, set }) => {
        await deleteCredentials(ctx, params.id);
        set.status = 204;
      },
      {
        scope: "backup.write",
        params: IdParams,
        response: { 204: noContent },
        detail: { summary: "Forget the login", tags },
      },
    )
    .post(
      "/data-sources/:id/verify",
      ({ params, ctx, request, server }) => {
        // A verify waits up to the source's connectTimeoutSeconds (at most 120 s), longer than
        // the server's idle timeout, which Bun counts while a handler works: not for this request.
        server?.timeout(request, 0);
        return verifyDataSource(ctx, kit.secrets, engineEnv, sqlitePaths, params.id);
      },
      {
        scope: "backup.operate",
        params: IdParams,
        response: { 200: VerifyOutcome },
        detail: {
          summary: "Connect for real and check the dump tool",
          description:
            "Always 200 when the source exists: `ok: false` carries `error.code` (CONNECTION_REFUSED, TIMEOUT, AUTH_FAILED, DATABASE_NOT_FOUND, TLS_ERROR, DUMP_TOOL_MISSING, DUMP_TOOL_TOO_OLD, PATH_NOT_ALLOWED: a SQLite path outside the operator's allowed roots; " +
            'DATABASE_UNREADABLE: a whole server (`database: "*"`) with databases, or globals (`:globals`), the login cannot read). A whole server\'s answer also lists `databases` (what a backup would take now) and `unreadable`. Stored as `lastVerify`.',
          tags,
        },
      },
    )
    .get(
      "/data-sources/:id/backup-jobs",
      async ({ params, query, ctx }) => {
        const list = `${JOBS}:${params.id}`;
        const page = await listDataSourceJobs(ctx, params.id, kit.cursors.request(list, ctx.orgId, query));
        return kit.cursors.answer(list, ctx.orgId, page);
      },
      {
        scope: "backup.read",
        params: IdParams,
        query: JobsQuery,
        response: { 200: pageOf(BackupJob) },
        detail: { summary: "The data source's backup jobs, newest first", tags },
      },
    )
    .get("/data-sources/:id/recovery-window", async ({ params, ctx }) => getRecoveryWindow(ctx, params.id), {
      scope: "backup.read",
      params: IdParams,
      response: { 200: RecoveryWindow },
      detail: {
        summary: "The instants a point-in-time restore of this PostgreSQL source can reach",
        description:
          "From the base backups of its physical policy and the WAL archived since: `{ from, to }`, both null when there is no base backup with its WAL archived yet. " +
          "`POST /restores` with `{ dataSourceId, targetTime, targetDirectory }` restores to any instant in it. " +
          "`from` is the daemon's clock at the end of a base backup, `to` the database server's clock at a commit: keep both in sync (NTP).",
        tags,
      },
    });
}
