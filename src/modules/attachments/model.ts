import { t } from "elysia";
import { oneOf } from "../../http/one-of.ts";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { JOB_ERROR_CODES } from "../../lib/failure-codes.ts";

export const AttachmentCreate = t.Object(
  {
    dataSourceId: t.String({ minLength: 1, maxLength: 64, examples: ["ds_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    policyId: t.String({ minLength: 1, maxLength: 64, examples: ["pol_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    enabled: t.Optional(t.Boolean({ default: true })),
  },
  { additionalProperties: false },
);

export const AttachmentPatch = t.Object({ enabled: t.Boolean() }, { additionalProperties: false });

const nullable = <T extends Parameters<typeof t.Union>[0][number]>(s: T) => t.Union([s, t.Null()]);
const time = t.String({ format: "date-time" });

export const LastJob = t.Object({
  id: t.String(),
  status: oneOf(["queued", "running", "succeeded", "failed", "canceled"]),
  trigger: oneOf(["schedule", "manual"]),
  queuedAt: time,
  startedAt: nullable(time),
  finishedAt: nullable(time),
  error: nullable(t.Object({ code: oneOf(JOB_ERROR_CODES), message: t.String() })),
});

export const Attachment = t.Object(
  {
    id: t.String({ examples: ["att_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    dataSourceId: t.String(),
    policyId: t.String(),
    enabled: t.Boolean(),
    nextRunAt: t.Union([time, t.Null()], { description: "When the schedule fires next (policy cron and zone); null while disabled." }),
    lastScheduledAt: t.Union([time, t.Null()], { description: "The last scheduled run the scheduler acted on (queued or skipped)." }),
    lastJob: t.Union([LastJob, t.Null()], { description: "The newest backup job of this attachment, whatever its status." }),
    createdAt: time,
    updatedAt: time,
  },
  { $id: "#/components/schemas/Attachment", title: "Attachment" },
);

export const AttachmentParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const AttachmentListQuery = t.Object(
  {
    ...PageQuery,
    dataSourceId: t.Optional(t.String({ maxLength: 64 })),
    policyId: t.Optional(t.String({ maxLength: 64 })),
    enabled: t.Optional(t.Union([t.Literal("true"), t.Literal("false")])),
  },
  { additionalProperties: false },
);

export const AttachmentPage = pageOf(Attachment);
