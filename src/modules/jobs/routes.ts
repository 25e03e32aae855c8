import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia, t } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import type { JobControl } from "../../runner/control.ts";
import { createDownloadLink, deleteJobFile, verifyJobFile } from "./files.ts";
import { DownloadLink, DownloadLinkBody, JobFileQuery, JobIdParams, JobPage, JobsListQuery, JobVerifyResult, RunNowBody } from "./model.ts";
import { BackupJob } from "./serialize.ts";
import { cancelJob, findJob, listJobs, presentJob, runNow } from "./service.ts";

const LIST = "backup-jobs";
const tags = [TAGS.jobs.name];

export function jobRoutes(kit: HttpKit, control: JobControl) {
  const deps = { storage: kit.storage, secrets: kit.secrets };
  return new Elysia({ name: "snapdb-jobs" })
    .use(kit.auth)
    .get(
      "/backup-jobs",
      async ({ query, ctx }) => {
        const page = await listJobs(ctx, query, kit.cursors.request(LIST, ctx.orgId, query));
        return kit.cursors.answer(LIST, ctx.orgId, { items: page.items.map((j) => presentJob(j, control)), hasMore: page.hasMore });
      },
      { scope: "backup.read", query: JobsListQuery, response: { 200: JobPage }, detail: { summary: "List backup jobs across the organisation, newest first", tags } },
    )
    .post(
      "/backup-jobs/run-now",
      async ({ body, ctx, set }) => {
        const job = await runNow(ctx, body);
        control.wakeNow();
        set.status = 202;
        return presentJob(job, control);
      },
      {
        scope: "backup.operate",
        body: RunNowBody,
        response: { 202: BackupJob },
        detail: {
          summary: "Queue a backup now (409 while one of the source is queued or running)",
          description:
            "The job starts when the runner has a slot: at most runner.maxConcurrent jobs at once, at most runner.maxConcurrentPerOrg (default 1) of one org, one per data source; " +
            "orgs with queued work take turns, the oldest job of an org first. It is stopped and fails TIMEOUT after the policy's timeoutSeconds, cut to the daemon's runner.maxTimeoutSeconds.",
          tags,
        },
      },
    )
    .get(
      "/backup-jobs/:id",
      async ({ params, ctx }) => {
        return presentJob(await findJob(ctx.db, ctx.orgId, params.id), control);
      },
      { scope: "backup.read", params: JobIdParams, response: { 200: BackupJob }, detail: { summary: "One backup job, with live progress while it runs", tags } },
    )
    .post(
      "/backup-jobs/:id/cancel",
      async ({ params, ctx, set }) => {
        const job = await cancelJob(ctx, control, params.id);
        set.status = 202;
        return presentJob(job, control);
      },
      {
        scope: "backup.operate",
        params: JobIdParams,
        response: { 202: BackupJob },
        detail: { summary: "Cancel a queued or running job (its dump is stopped, its partial upload removed)", tags },
      },
    )
    .post(
      "/backup-jobs/:id/verify",
      ({ params, query, ctx, request, server }) => {
        // The answer comes once the whole file was read twice, which can take longer than the
        // server's idle timeout (it counts while a handler works): not for this request.
        server?.timeout(request, 0);
        return verifyJobFile(ctx, deps, params.id, query.part);
      },
      {
        scope: "backup.operate",
        params: JobIdParams,
        query: JobFileQuery,
        response: { 200: JobVerifyResult },
        detail: {
          summary: "Re-read the stored file: size, sha256, and that it decrypts and decompresses",
          description:
            "Synchronous: it answers once the file was read (twice: as stored, then decrypted and decompressed), however long that takes; the daemon's idle timeout does not apply to it. " +
            "A whole-server backup's files are verified one at a time: `?part=NAME` (400 listing the parts without it).",
          tags,
        },
      },
    )
    .post("/backup-jobs/:id/download-link", ({ params, query, body, ctx }) => createDownloadLink(ctx, deps, params.id, body?.expiresInSeconds ?? 300, query.part), {
      scope: "backup.operate",
      params: JobIdParams,
      query: JobFileQuery,
      body: t.Optional(DownloadLinkBody),
      response: { 200: DownloadLink },
      detail: {
        summary: "A short-lived download URL for the stored file (60–3600 s, default 300)",
        description: "A whole-server backup has one link per file: `?part=NAME` (400 listing the parts without it).",
        tags,
      },
    })
    .delete(
      "/backup-jobs/:id/file",
      async ({ params, ctx, set }) => {
        await deleteJobFile(ctx, deps, params.id);
        set.status = 204;
      },
      {
        scope: "backup.operate",
        params: JobIdParams,
        response: { 204: t.Void({ description: "No content" }) },
        detail: { summary: "Delete the stored backup file (every part of a whole-server backup); the job stays, with fileDeletedAt", tags },
      },
    );
}
