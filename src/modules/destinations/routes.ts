import { TAGS } from "../../http/openapi-tags.ts";
import { Elysia, t } from "elysia";
import type { HttpKit } from "../../http/kit.ts";
import { serviceContext } from "../../http/kit.ts";
import { Destination, DestinationCreate, DestinationPage, DestinationQuery, DestinationUpdate, IdParams, VerifyOutcome } from "./model.ts";
import {
  createDestination,
  deleteDestination,
  ensureManagedDestination,
  getDestination,
  listDestinations,
  updateDestination,
} from "./service.ts";
import { verifyDestination } from "./verify.ts";

const LIST = "storage-destinations";
const tags = [TAGS.destinations.name];

export function destinationRoutes(kit: HttpKit) {
  const deps = { config: kit.config, secrets: kit.secrets };
  return new Elysia({ name: "snapdb-destinations" })
    .use(kit.auth)
    .post(
      "/storage-destinations/managed/ensure",
      ({ principal, request, server, set }) => {
        const { created, destination } = ensureManagedDestination(serviceContext(kit.db, principal, request, server), kit.config);
        set.status = created ? 201 : 200;
        return destination;
      },
      {
        scope: "backup.write",
        response: { 200: Destination, 201: Destination },
        detail: {
          summary: "Ensure the org's managed destination",
          description:
            "Idempotent: creates the org's managed destination on the first call (201) and returns it as is after (200), " +
            "also under concurrent calls. Its storage is the operator's (`managedStorage`), under a per-org prefix; it " +
            "can't be patched or deleted.",
          tags,
        },
      },
    )
    .post(
      "/storage-destinations",
      ({ body, principal, request, server, set }) => {
        set.status = 201;
        return createDestination(serviceContext(kit.db, principal, request, server), body, deps);
      },
      {
        scope: "backup.write",
        body: DestinationCreate,
        response: { 201: Destination },
        detail: {
          summary: "Create a storage destination (bring your own S3 bucket, or a local directory)",
          description:
            "`s3`: `bucket`, `auth` (required), `endpoint`, `region`, `prefix`, `forcePathStyle`. `local`: `path`, " +
            "under one of the operator's `storage.allowedLocalRoots` (else 400). Secrets are write-only.",
          tags,
        },
      },
    )
    .get(
      "/storage-destinations",
      ({ query, principal, request, server }) => {
        const ctx = serviceContext(kit.db, principal, request, server);
        const page = listDestinations(ctx, query, kit.cursors.request(LIST, ctx.orgId, query), kit.config);
        return kit.cursors.answer(LIST, ctx.orgId, page);
      },
      {
        scope: "backup.read",
        query: DestinationQuery,
        response: { 200: DestinationPage },
        detail: { summary: "List storage destinations, newest first", tags },
      },
    )
    .get(
      "/storage-destinations/:id",
      ({ params, principal, request, server }) => getDestination(serviceContext(kit.db, principal, request, server), params.id, kit.config),
      { scope: "backup.read", params: IdParams, response: { 200: Destination }, detail: { summary: "Get a storage destination", tags } },
    )
    .patch(
      "/storage-destinations/:id",
      ({ params, body, principal, request, server }) => {
        const destination = updateDestination(serviceContext(kit.db, principal, request, server), params.id, body, deps);
        kit.storage.evict(params.id);
        return destination;
      },
      {
        scope: "backup.write",
        params: IdParams,
        body: DestinationUpdate,
        response: { 200: Destination },
        detail: {
          summary: "Update a storage destination",
          description:
            "`auth` replaces the whole auth (secrets included). `bucket`, `prefix` and `path` can't change while backup " +
            "files are stored there (409). The managed destination can't be changed (409).",
          tags,
        },
      },
    )
    .delete(
      "/storage-destinations/:id",
      ({ params, principal, request, server, set }) => {
        deleteDestination(serviceContext(kit.db, principal, request, server), params.id);
        kit.storage.evict(params.id);
        set.status = 204;
      },
      {
        scope: "backup.write",
        params: IdParams,
        response: { 204: t.Void({ description: "No content" }) },
        detail: {
          summary: "Delete a storage destination",
          description:
            "409 while a backup policy uses it, and for the managed destination. Files already stored there are left in place.",
          tags,
        },
      },
    )
    .post(
      "/storage-destinations/:id/verify",
      ({ params, principal, request, server }) => verifyDestination(serviceContext(kit.db, principal, request, server), params.id, kit.storage),
      {
        scope: "backup.operate",
        params: IdParams,
        response: { 200: VerifyOutcome },
        detail: {
          summary: "Verify a storage destination",
          description:
            "Writes, reads back and deletes a probe object under the org's prefix. Answers `{ ok: true, latencyMs }` or " +
            "`{ ok: false, error: { code, message } }` with code `BUCKET_NOT_FOUND`, `ACCESS_DENIED`, " +
            "`STORAGE_UNREACHABLE`, `ASSUME_ROLE_FAILED` or `STORAGE_ERROR`. The outcome is kept as `lastVerify`.",
          tags,
        },
      },
    );
}
