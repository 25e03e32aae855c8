type Json = Record<string, any>;

/** What an error status means wherever it is not described more precisely. */
const ERROR_STATUS_TEXT: Record<string, string> = {
  "400": "Invalid input (`INVALID_INPUT`), with `details[].path`",
  "401": "Missing or invalid token (`UNAUTHENTICATED`)",
  "403": "The token lacks the scope (`FORBIDDEN`)",
  "404": "Not found, or another organisation's (`NOT_FOUND`)",
  "409": "Conflicts with the current state (`CONFLICT`)",
  "413": "Body over the size limit (`PAYLOAD_TOO_LARGE`)",
  "429": "Too many requests (`RATE_LIMITED`)",
  "500": "Unexpected error (`INTERNAL`); the cause is logged with the request id",
  "503": "A service it needs is not available (`UNAVAILABLE`)",
};

/**
 * The error statuses each operation answers beyond the ones every operation may give:
 * 400 (a NUL in the query is refused before any handler runs), 413 (a declared length over
 * the limit is refused before routing) and 500 everywhere, 401 and 403 with a scope, 404 with an id in the path. Keyed like src/http/operation-ids.ts. A status a route answers but
 * nobody listed here fails test/integration/declared-statuses.test.ts (and any test whose
 * call gets it: test/helpers/status-contract.ts checks every answer the suites receive).
 */
export const OPERATION_ERRORS: Record<string, Record<string, string>> = {
  "GET /readyz": { "503": "Not ready (`UNAVAILABLE`): the message names the failing checks" },
  "GET /metrics": {
    "401": "`http.metricsPublic` is false and the token is missing or invalid (`UNAUTHENTICATED`)",
    "403": "`http.metricsPublic` is false and the token lacks the `metrics.read` scope (`FORBIDDEN`)",
  },
  "GET /downloads/{token}": {
    "403": "The link is expired or tampered with (`FORBIDDEN`)",
    "404": "The file was deleted since the link was made, or it is on the disk of a fleet node that is down (`NOT_FOUND`)",
    "503": "The storage holding the file, or the fleet node whose disk holds it, is not available (`UNAVAILABLE`)",
  },
  "POST /storage-destinations": { "409": "A destination of that name exists (`CONFLICT`, `details[].path` `/name`)" },
  "PATCH /storage-destinations/{id}": {
    "409": "The name is taken, the destination is the managed one, or bucket/prefix/path would change while backup files are stored there (`CONFLICT`)",
  },
  "DELETE /storage-destinations/{id}": { "409": "A backup policy uses it, or it is the managed destination (`CONFLICT`)" },
  "POST /backup-policies": {
    "404": "`destinationId` names no destination of the organisation (`NOT_FOUND`, `details[].path` `/destinationId`)",
    "409": "A policy of that name exists (`CONFLICT`, `details[].path` `/name`)",
  },
  "PATCH /backup-policies/{id}": {
    "404": "No such policy, or `destinationId` names no destination of the organisation (`NOT_FOUND`)",
    "409": "A policy of that name exists (`CONFLICT`, `details[].path` `/name`)",
  },
  "DELETE /backup-policies/{id}": { "409": "The policy is attached to data sources and `cascade` is not true (`CONFLICT`)" },
  "POST /attachments": {
    "404": "`dataSourceId` or `policyId` names nothing of the organisation (`NOT_FOUND`, with `details[].path`)",
    "409": "The policy is already attached to the data source (`CONFLICT`, `details[].path` `/policyId`)",
  },
  "POST /data-sources": { "409": "A data source of that name exists (`CONFLICT`, `details[].path` `/name`)" },
  "PATCH /data-sources/{id}": { "409": "A data source of that name exists (`CONFLICT`, `details[].path` `/name`)" },
  "DELETE /data-sources/{id}": {
    "409": "It has attachments or backup jobs and `cascade` is not true, or a backup job of it is queued or running (`CONFLICT`)",
  },
  "POST /backup-jobs/run-now": { "409": "A backup of the data source is already queued or running (`CONFLICT`)" },
  "POST /backup-jobs/{id}/cancel": { "409": "The job has already finished (`CONFLICT`)" },
  "POST /backup-jobs/{id}/verify": {
    "409": "The job has no stored file: it did not succeed, its file was deleted, or its destination is gone (`CONFLICT`)",
  },
  "POST /backup-jobs/{id}/download-link": {
    "409": "The job has no stored file: it did not succeed, its file was deleted, or its destination is gone (`CONFLICT`)",
    "503": "The storage holding the file is not available (`UNAVAILABLE`)",
  },
  "DELETE /backup-jobs/{id}/file": {
    "409": "The job never stored a file, or its destination is gone (`CONFLICT`)",
    "503": "The storage holding the file is not available (`UNAVAILABLE`)",
  },
  "POST /restores": {
    "409":
      "The backup has no usable stored file (deleted, missing, size differs, storage unreachable), the target is not empty and `clean` is not set, " +
      "the target cannot be checked or its path is refused, or a restore into the target is already queued or running (`CONFLICT`)",
  },
  "POST /restores/{id}/cancel": { "409": "The restore has already finished (`CONFLICT`)" },
  "POST /restore-plans": { "409": "A plan of that name exists (`CONFLICT`, `details[].path` `/name`)" },
  "PATCH /restore-plans/{id}": { "409": "A plan of that name exists (`CONFLICT`, `details[].path` `/name`)" },
  "POST /restore-plans/{id}/run-now": { "409": "The plan's previous run is still queued or running (`CONFLICT`)" },
  "POST /notification-channels": { "409": "A channel of that name exists (`CONFLICT`, `details[].path` `/name`)" },
  "PATCH /notification-channels/{id}": { "409": "A channel of that name exists (`CONFLICT`, `details[].path` `/name`)" },
  "POST /notification-rules": { "404": "The channel, data source or policy is not the organisation's (`NOT_FOUND`, `details[].path` names it)" },
  "PATCH /notification-rules/{id}": { "404": "The rule, or the channel, data source or policy it names, is not the organisation's (`NOT_FOUND`)" },
};

const REQUEST_ID = { $ref: "#/components/headers/RequestId" };
const errorContent = { "application/json": { schema: { $ref: "#/components/schemas/Error" } } };

/**
 * Whether a request takes input of its own: it has parameters, or it is not a GET (any other
 * method's body goes through the JSON parser, which refuses a malformed one). One that does
 * not still answers 400 to a NUL in its query (src/http/no-nul.ts refuses one anywhere).
 */
const takesInput = (key: string, op: Json) => (op.parameters?.length ?? 0) > 0 || !key.startsWith("GET ");
const NUL_QUERY_TEXT = "A query parameter, even one the operation does not read, holds a NUL character (U+0000) (`INVALID_INPUT`, with `details[].path`)";

/** The error statuses of one operation: the common ones and its own (OPERATION_ERRORS). */
export function errorStatusesOf(key: string, op: Json, secured: boolean, path: string): Record<string, string> {
  const statuses: Record<string, string> = {};
  const add = (status: string) => (statuses[status] = ERROR_STATUS_TEXT[status]!);
  if (takesInput(key, op)) add("400");
  else statuses["400"] = NUL_QUERY_TEXT;
  if (secured) {
    add("401");
    add("403");
  }
  if (path.includes("{")) add("404");
  add("413");
  add("500");
  return { ...statuses, ...OPERATION_ERRORS[key] };
}

/**
 * Declares every error status of the operation with the `Error` body, and the
 * `x-request-id` header on every answer (success and error alike).
 */
export function declareResponses(key: string, op: Json, secured: boolean, path: string): void {
  op.responses ??= {};
  for (const [status, description] of Object.entries(errorStatusesOf(key, op, secured, path))) {
    const response = (op.responses[status] ??= {});
    // A route's own word on its status wins over the generic text.
    response.description = OPERATION_ERRORS[key]?.[status] ?? response.description ?? description;
    response.content ??= errorContent;
  }
  for (const response of Object.values(op.responses) as Json[]) {
    response.headers = { "x-request-id": REQUEST_ID, ...response.headers };
  }
}

/** `components.headers` for what declareResponses refers to. */
export const RESPONSE_HEADERS = {
  RequestId: {
    description: "The request's id: the caller's own `x-request-id` when it is 1–64 characters of `A-Za-z0-9._:-`, else one snapdb made. " + "The daemon's log lines about the request carry it.",
    required: true,
    schema: { type: "string", examples: ["req_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] },
  },
};
