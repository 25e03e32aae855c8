import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia, t } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import { Attachment, AttachmentCreate, AttachmentListQuery, AttachmentPage, AttachmentParams, AttachmentPatch } from "./model.ts";
import { createAttachment, deleteAttachment, getAttachment, listAttachments, updateAttachment } from "./service.ts";

const LIST = "attachments";
const tags = [TAGS.attachments.name];

export function attachmentRoutes(kit: HttpKit) {
  return new Elysia({ name: "snapdb-attachments" })
    .use(kit.auth)
    .post(
      "/attachments",
      async ({ body, ctx, set }) => {
        const attachment = await createAttachment(ctx, kit.scheduler, body);
        set.status = 201;
        return attachment;
      },
      {
        scope: "backup.write",
        body: AttachmentCreate,
        response: { 201: Attachment },
        detail: { summary: "Attach a policy to a data source", description: "The same policy on the same data source twice is 409.", tags },
      },
    )
    .get(
      "/attachments",
      async ({ query, ctx }) => {
        const page = await listAttachments(ctx, query, kit.cursors.request(LIST, ctx.orgId, query));
        return kit.cursors.answer(LIST, ctx.orgId, page);
      },
      {
        scope: "backup.read",
        query: AttachmentListQuery,
        response: { 200: AttachmentPage },
        detail: { summary: "List attachments, newest first", tags },
      },
    )
    .get("/attachments/:id", async ({ params, ctx }) => getAttachment(ctx, params.id), {
      scope: "backup.read",
      params: AttachmentParams,
      response: { 200: Attachment },
      detail: { summary: "Get an attachment, with its next run and last job", tags },
    })
    .patch("/attachments/:id", async ({ params, body, ctx }) => updateAttachment(ctx, kit.scheduler, params.id, body), {
      scope: "backup.write",
      params: AttachmentParams,
      body: AttachmentPatch,
      response: { 200: Attachment },
      detail: { summary: "Enable or disable an attachment", tags },
    })
    .delete(
      "/attachments/:id",
      async ({ params, ctx, set }) => {
        await deleteAttachment(ctx, kit.scheduler, params.id);
        set.status = 204;
      },
      {
        scope: "backup.write",
        params: AttachmentParams,
        response: { 204: t.Void() },
        detail: { summary: "Detach (jobs and their files stay)", tags },
      },
    );
}
