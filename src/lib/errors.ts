/** Every `code` of an error answer: the one list the API's `Error` schema enumerates. */
export const ERROR_CODES = ["INVALID_INPUT", "UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "PAYLOAD_TOO_LARGE", "RATE_LIMITED", "INTERNAL", "NOT_IMPLEMENTED", "UNAVAILABLE"] as const;

/** The code of an `AppError`; `onError` maps one to `{ code, message, details? }`. */
export type ErrorCode = (typeof ERROR_CODES)[number];

export const httpStatusOf: Record<ErrorCode, number> = {
  INVALID_INPUT: 400,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  NOT_IMPLEMENTED: 501,
  UNAVAILABLE: 503,
};

export interface ErrorDetail {
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
  ) {
    super(message);
    this.name = "AppError";
  }

  get status(): number {
    return httpStatusOf[this.code];
  }

  toBody(): { code: ErrorCode; message: string; details?: ErrorDetail[] } {
    return this.details?.length ? { code: this.code, message: this.message, details: this.details } : { code: this.code, message: this.message };
  }
}

export const invalidInput = (path: string, message: string) => new AppError("INVALID_INPUT", message, [{ path, message }]);

export const notFound = (what: string) => new AppError("NOT_FOUND", `${what} not found`);
