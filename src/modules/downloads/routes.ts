import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia, t } from "elysia";
import { eq } from "drizzle-orm";
import { nodes, storageDestinations } from "../../db/schema.ts";
import { nodeIdOf } from "../../fleet/node.ts";
import { storeNowMs } from "../../lib/clock.ts";
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
/** Marks a download one node passes through from another: the owner serves it, never passes it on. */
const PASSED_THROUGH = "x-snapdb-passed-through";

/** Headers of the owner's answer that the passing node repeats. */
const PASSED_HEADERS = ["content-type", "content-length", "content-disposition", "cache-control", "x-content-type-options"];

export function downloadRoutes(kit: HttpKit) {
  const self = nodeIdOf(kit.config.dataDir);
  const leaseMs = kit.config.runner.leaseSeconds * 1000;

  /**
   * A fleet: the file of a local destination is on the disk of the node that wrote it. The
   * link may reach any node (a load balancer in front of the fleet); another node streams it
   * from the owner (flat memory). An owner that is down or unknown leaves it to this node:
   * the directory may be shared (NFS), else the answer is 404 naming the owner.
   */
  async function fromOwner(nodeId: string, token: string, headers: Headers): Promise<Response | null> {
    if (nodeId === self || headers.get(PASSED_THROUGH)) return null;
    const owner = (await kit.db.select().from(nodes).where(eq(nodes.id, nodeId)))[0];
    if (!owner?.url || owner.stoppedAt !== null || owner.lastSeenAt < storeNowMs() - leaseMs) return null;
    let answer: Response;
    try {
      answer = await fetch(`${owner.url}/downloads/${encodeURIComponent(token)}`, { headers: { [PASSED_THROUGH]: self }, redirect: "manual" });
    } catch {
      throw new AppError("UNAVAILABLE", "the node holding this file does not answer");
    }
    if (answer.status !== 200) {
      await answer.body?.cancel().catch(() => {});
      if (answer.status === 404) throw new AppError("NOT_FOUND", "file not found");
      throw new AppError("UNAVAILABLE", "the node holding this file could not serve it");
    }
    const passed = new Headers();
    for (const name of PASSED_HEADERS) {
      const value = answer.headers.get(name);
      if (value !== null) passed.set(name, value);
    }
    return new Response(answer.body, { status: 200, headers: passed });
  }

  return new Elysia({ name: "snapdb-downloads" }).get(
    "/downloads/:token",
    async ({ params, request }) => {
      const tokens = kit.storage.deps.downloadTokens;
      const check = tokens.verify(params.token);
      if (!check.ok) {
        throw new AppError("FORBIDDEN", check.reason === "expired" ? "download link has expired" : "download link is invalid");
      }
      const { grant } = check;
      if (grant.nodeId) {
        const passed = await fromOwner(grant.nodeId, params.token, request.headers);
        if (passed) return passed;
      }
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
          const elsewhere = grant.nodeId && grant.nodeId !== self ? ` (it was written on node ${grant.nodeId}, which is down)` : "";
          throw new AppError("NOT_FOUND", `file not found${elsewhere}`);
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
          "credential. An expired or tampered link is `403 FORBIDDEN`; a file deleted since is `404`. In a fleet any " +
          "node answers: a file on another node's disk is streamed from that node (`503` when it does not answer).",
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
