import { t } from "elysia";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { Restore } from "../restores/serialize.ts";

export const MAX_CHECKS = 20;

const Name = t.String({ minLength: 1, maxLength: 100, examples: ["nightly drill"] });
const SourceId = t.String({
  minLength: 1,
  maxLength: 64,
  examples: ["ds_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"],
  description:
    'The data source whose newest successful logical backup of one database each run restores (never a physical policy\'s base backup). A whole-server data source (database "*") is refused.',
});
const Mode = t.Union([t.Literal("drill"), t.Literal("refresh")], {
  description:
    "drill: restore into a scratch database on the target's server (snapdb_drill_…; SQLite: a scratch file in the daemon's data dir), verify it, drop it whatever the outcome. " +
    "refresh: restore into the target database with clean (e.g. production into staging), then verify it. " +
    "clean on PostgreSQL drops and recreates the archive's own objects only (a table only the target has is kept; one depending on an archive's table fails the run RESTORE_FAILED, target unchanged); " +
    "on MySQL/MariaDB it drops every table and view of the target first; a SQLite file is replaced whole.",
});
const Cron = t.String({ examples: ["30 4 * * *"], description: "A 5-field cron expression (minute hour day-of-month month day-of-week)." });
const Zone = t.String({ minLength: 1, maxLength: 64, examples: ["Europe/Berlin"], description: "IANA time zone the cron is read in (default UTC)." });

const Target = t.Object(
  {
    dataSourceId: t.String({
      minLength: 1,
      maxLength: 64,
      description:
        "The data source whose server a drill restores onto (its credentials need CREATEDB / CREATE and DROP on snapdb_drill_%), or the one a refresh replaces. Same engine family as the plan's data source.",
    }),
    database: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 63,
        description: "Refresh only: the database replaced on the target's server (default: the target data source's own). Never the plan's data source's own database.",
      }),
    ),
  },
  { additionalProperties: false },
);

export const Check = t.Object(
  {
    name: t.String({ minLength: 1, maxLength: 100, examples: ["orders exist"] }),
    sql: t.String({
      minLength: 1,
      maxLength: 10_000,
      examples: ["SELECT count(*) FROM orders WHERE created_at > now() - interval '2 days'"],
      description: "One statement returning one value; runs read-only in the restored database (at most 300 s).",
    }),
    expect: t.String({
      maxLength: 1000,
      examples: ["0"],
      description:
        "Compared as text with the first column of the first row: numbers in decimal, booleans true/false, times in ISO 8601 UTC, JSON as JSON text. No row or NULL never matches. Cast in SQL to control the text.",
    }),
  },
  { additionalProperties: false },
);

const Checks = t.Array(Check, { maxItems: MAX_CHECKS, description: `Up to ${MAX_CHECKS}, names unique.` });

export const RestorePlanCreate = t.Object(
  {
    name: Name,
    dataSourceId: SourceId,
    mode: Mode,
    scheduleCron: Cron,
    timezone: t.Optional(Zone),
    target: Target,
    checks: t.Optional(Checks),
    enabled: t.Optional(t.Boolean({ default: true })),
  },
  { additionalProperties: false },
);

/** Partial update; `target` and `checks` are replaced as a whole. */
export const RestorePlanPatch = t.Object(
  {
    name: t.Optional(Name),
    dataSourceId: t.Optional(SourceId),
    mode: t.Optional(Mode),
    scheduleCron: t.Optional(Cron),
    timezone: t.Optional(Zone),
    target: t.Optional(Target),
    checks: t.Optional(Checks),
    enabled: t.Optional(t.Boolean()),
  },
  { additionalProperties: false },
);

const time = t.String({ format: "date-time" });

export const RestorePlan = t.Object(
  {
    id: t.String({ examples: ["rpl_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    name: t.String(),
    dataSourceId: t.String({ description: "Whose newest successful logical backup of one database each run restores." }),
    mode: t.Union([t.Literal("drill"), t.Literal("refresh")]),
    scheduleCron: t.String(),
    timezone: t.String(),
    target: t.Object({ dataSourceId: t.String(), database: t.Union([t.String(), t.Null()]) }),
    checks: t.Array(t.Object({ name: t.String(), sql: t.String(), expect: t.String() })),
    enabled: t.Boolean(),
    nextRunAt: t.Union([time, t.Null()], { description: "When the schedule fires next; null while disabled." }),
    lastScheduledAt: t.Union([time, t.Null()], { description: "The last scheduled run the scheduler acted on (queued or skipped)." }),
    lastRun: t.Union([Restore, t.Null()], { description: "The newest run of this plan (a restore with its verification), whatever its status." }),
    createdAt: time,
    updatedAt: time,
  },
  { $id: "#/components/schemas/RestorePlan", title: "RestorePlan" },
);

export const RestorePlanParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const RestorePlanListQuery = t.Object(
  {
    ...PageQuery,
    dataSourceId: t.Optional(t.String({ maxLength: 64, description: "Plans restoring this data source's backups." })),
    mode: t.Optional(t.Union([t.Literal("drill"), t.Literal("refresh")])),
    enabled: t.Optional(t.Union([t.Literal("true"), t.Literal("false")])),
  },
  { additionalProperties: false },
);

export const RestorePlanPage = pageOf(RestorePlan);
