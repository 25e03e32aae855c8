import { t } from "elysia";
import { Int } from "../../http/json-int.ts";
import { oneOf } from "../../http/one-of.ts";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { FILE_CHECK_CODES } from "../../lib/failure-codes.ts";
import { BackupJob } from "./serialize.ts";

const Status = t.Union(["queued", "running", "succeeded", "failed", "canceled"].map((s) => t.Literal(s)));

export const JobsListQuery = t.Object(
  {
    ...PageQuery,
    dataSourceId: t.Optional(t.String({ maxLength: 64 })),
    policyId: t.Optional(t.String({ maxLength: 64 })),
    status: t.Optional(Status),
    trigger: t.Optional(t.Union([t.Literal("schedule"), t.Literal("manual")])),
    from: t.Optional(t.String({ maxLength: 40, description: "RFC 3339; jobs queued at or after it." })),
    to: t.Optional(t.String({ maxLength: 40, description: "RFC 3339; jobs queued before it." })),
  },
  { additionalProperties: false },
);

export const RunNowBody = t.Object(
  {
    dataSourceId: t.String({ minLength: 1, maxLength: 64 }),
    policyId: t.Optional(t.String({ minLength: 1, maxLength: 64, description: "Needed when the source has several attachments." })),
  },
  { additionalProperties: false },
);

export const DownloadLinkBody = t.Object({ expiresInSeconds: t.Optional(t.Integer({ minimum: 60, maximum: 3600, default: 300 })) }, { additionalProperties: false });

export const DownloadLink = t.Object({ url: t.String(), expiresAt: t.String({ format: "date-time" }) });

export const JobVerifyResult = t.Object({
  ok: t.Boolean(),
  sizeBytes: t.Optional(Int({ description: "Bytes after decryption and decompression (the dump)." })),
  storedBytes: t.Optional(Int()),
  sha256: t.Optional(t.String()),
  error: t.Optional(t.Object({ code: oneOf(FILE_CHECK_CODES), message: t.String() })),
});

export const JobFileQuery = t.Object(
  {
    part: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 300,
        description: "A whole-server backup's file: the part's name (a database's name, or `:globals`). Required for such a backup (400 listing its parts without it); refused for a one-file backup.",
      }),
    ),
  },
  { additionalProperties: false },
);

export const JobIdParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const JobPage = pageOf(BackupJob);
