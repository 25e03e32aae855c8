import { ValueErrorType } from "@sinclair/typebox/errors";
import { Elysia, t } from "elysia";
import { AppError, ERROR_CODES, type ErrorDetail } from "../lib/errors.ts";
import { oneOf } from "./one-of.ts";
import { LIMIT_PATTERN, PAGE_LIMIT } from "./pagination.ts";
import type { Logger } from "../lib/logger.ts";
import { requestMeta } from "./request-meta.ts";

/** The one error body of the API (also the OpenAPI `Error` schema). */
export const ErrorBody = t.Object(
  {
    code: oneOf(ERROR_CODES, { examples: ["INVALID_INPUT"] }),
    message: t.String(),
    details: t.Optional(t.Array(t.Object({ path: t.String(), message: t.String() }))),
  },
  { $id: "#/components/schemas/Error", title: "Error" },
);

interface ValueErrorLike {
  /** TypeBox's ValueErrorType: what failed, independent of the message's wording. */
  type?: number;
  path?: string;
  message?: string;
  summary?: string;
  value?: unknown;
  schema?: { pattern?: string; anyOf?: { type?: string; format?: string; minimum?: number; maximum?: number; const?: unknown }[] };
}

interface ValidationLike {
  all: ValueErrorLike[];
  type?: string;
}

/** `a`, `a or b`, `a, b or c`. */
const either = (values: string[]) => (values.length < 2 ? values.join("") : `${values.slice(0, -1).join(", ")} or ${values.at(-1)}`);

/**
 * TypeBox's words, made plainer where they say little (a union's "Expected union value"), and
 * in the terms of the document where a query value is validated as the string it is on the
 * wire: a flag documented as a boolean is "true or false", `limit` an integer from 1 to 200.
 */
function plainMessage(e: ValueErrorLike): string {
  if (e.type === ValueErrorType.ObjectAdditionalProperties) return "unknown field";
  if (e.type === ValueErrorType.ObjectRequiredProperty) return "is required";
  if (e.type === ValueErrorType.StringPattern && e.schema?.pattern === LIMIT_PATTERN) {
    return `must be an integer from ${PAGE_LIMIT.minimum} to ${PAGE_LIMIT.maximum}`;
  }
  const literals = e.schema?.anyOf?.map((s) => s.const);
  if (e.type === ValueErrorType.Union && literals?.length && literals.every((v) => typeof v === "string")) {
    return `must be ${either(literals as string[])}`;
  }
  if (e.type === ValueErrorType.Union && e.schema?.anyOf) {
    // Elysia widens numbers to "number or numeric string": name the range that failed.
    const ranged = e.schema.anyOf.find((s) => s.minimum !== undefined || s.maximum !== undefined);
    if (ranged && typeof e.value === "number") {
      const kind = ranged.type === "integer" ? "an integer" : "a number";
      if (ranged.minimum !== undefined && ranged.maximum !== undefined) return `must be ${kind} from ${ranged.minimum} to ${ranged.maximum}`;
      return ranged.minimum !== undefined ? `must be ${kind} ≥ ${ranged.minimum}` : `must be ${kind} ≤ ${ranged.maximum}`;
    }
    const kinds = [...new Set(e.schema.anyOf.map((s) => s.format ?? s.type).filter(Boolean))];
    if (kinds.length) return `expected ${kinds.join(" or ")}`;
  }
  return e.message ?? e.summary ?? "invalid";
}

/** TypeBox paths are JSON pointers into the body or query: the offending field. */
function validationDetails(error: ValidationLike): ErrorDetail[] {
  const seen = new Set<string>();
  const details: ErrorDetail[] = [];
  for (const e of error.all ?? []) {
    const path = e.path || "/";
    if (seen.has(path)) continue;
    seen.add(path);
    details.push({ path, message: plainMessage(e) });
  }
  return details;
}

/** Turns whatever was thrown into the API's error answer; only AppError texts reach the client. */
export function toAppError(code: string | number, error: unknown): AppError {
  if (error instanceof AppError) return error;
  // Elysia wraps whatever a body parser throws (our 413 included) in a ParseError.
  if (error instanceof Error && error.cause instanceof AppError) return error.cause;
  switch (code) {
    case "VALIDATION": {
      // An answer that does not match its own declared schema is our bug, never the client's input.
      if ((error as ValidationLike).type === "response") return new AppError("INTERNAL", "internal error");
      const details = validationDetails(error as ValidationLike);
      const first = details[0];
      return new AppError("INVALID_INPUT", first ? `${first.path}: ${first.message}` : "invalid input", details);
    }
    case "PARSE":
      return new AppError("INVALID_INPUT", "request body is not valid JSON");
    case "NOT_FOUND":
      return new AppError("NOT_FOUND", "no such route");
    case "INVALID_COOKIE_SIGNATURE":
    case "INVALID_FILE_TYPE":
      return new AppError("INVALID_INPUT", "invalid request");
    default:
      return new AppError("INTERNAL", "internal error");
  }
}

export function errorHandler(logger: Logger) {
  return new Elysia({ name: "snapdb-errors" }).onError({ as: "global" }, ({ code, error, set, request }) => {
    const appError = toAppError(code, error);
    const requestId = requestMeta(request).id;
    if (appError.code === "INTERNAL") {
      logger.error("unhandled error", { requestId, method: request.method, url: new URL(request.url).pathname, error });
    }
    set.status = appError.status;
    set.headers["content-type"] = "application/json";
    set.headers["x-request-id"] = requestId;
    if (appError.code === "UNAUTHENTICATED") set.headers["www-authenticate"] = 'Bearer error="invalid_token"';
    return appError.toBody();
  });
}
