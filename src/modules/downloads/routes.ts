import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia, t } from "elysia";
import { eq } from "drizzle-orm";
import { storageDestinations } from "../../db/schema.ts";
import type { HttpKit } from "../../http/kit.ts";
import { AppError } from "../../lib/errors.ts";
import { StorageError } from "../../storage/errors.ts";

/** A file name safe inside a quoted Content-Disposition, plus its RFC 5987 form. */
function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^A-Za-z0-9._-]/g, "_") || "backup";
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/**
 * `GET /downloads/{token}`: backup files of local-disk destinations. No bearer token: the
 * signed token is the credential (one destination, one key, one expiry). A tampered token
 * and an expired one are both 403 FORBIDDEN (the message tells which), so the route never
 * needs a status outside the API's error codes.
 */
export function downloadRoutes(kit: HttpKit) {
  return new Elysia({ name: "snapdb-downloads" }).get(
    "/downloads/:token",
    async ({ params }) => {
      const tokens = kit.storage.deps.downloadTokens;
      const check = tokens.verify(params.token);
      if (!check.ok) {
        throw new AppError("FORBIDDEN", check.reason === "expired" ? "download link has expired" : "download link is invalid");
      }
      const { grant } = check;
      const row = (await kit.db.select().from(storageDestinations).where(eq(storageDestinations.id, grant.destinationId)))[0];
      if (!row) throw new AppError("NOT_FOUND", "file not found");
      try {
        const object = await kit.storage.driverFor(row).get(grant.key);
        if (object.blob) await object.body.cancel().catch(() => {});
        return new Response(object.blob ?? object.body, {
          status: 200,
          headers: {
            "content-type": "application/octet-stream",
            "content-length": String(object.size),
            "content-disposition": contentDisposition(grant.filename),
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
          },
        });
      } catch (err) {
        if (err instanceof StorageError && (err.code === "NOT_FOUND" || err.code === "INVALID_KEY")) {
          throw new AppError("NOT_FOUND", "file not found");
        }
        if (err instanceof StorageError) throw new AppError("UNAVAILABLE", "the storage holding this file is not available");
        throw err;
      }
    },
    {
      params: t.Object({ token: t.String({ maxLength: 4096 }) }),
      detail: {
        summary: "Download a backup file of a local-disk destination with a signed link",
        description:
          "The link comes from `POST /backup-jobs/{id}/download-link`. No bearer token: the signed token is the " +
          "credential. An expired or tampered link is `403 FORBIDDEN`; a file deleted since is `404`.",
        tags: [TAGS.downloads.name],
        responses: {
          200: {
            description: "The file, streamed, with Content-Length and Content-Disposition",
            content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
            headers: {
              "content-disposition": { description: "`attachment` with the file's name", schema: { type: "string" } },
              "content-length": { description: "The file's size in bytes", schema: { type: "integer" } },
            },
          },
        },
      },
    },
  );
}
