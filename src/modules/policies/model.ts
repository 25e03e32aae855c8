import { t } from "elysia";
import { Int } from "../../http/json-int.ts";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { MAX_AGE_DAYS, MAX_KEEP } from "./validate.ts";

const count = (description: string) =>
  t.Optional(t.Union([t.Integer({ minimum: -1, maximum: MAX_KEEP }), t.Null()], { description: `${description} -1: no limit; 0, null or left out: the rule is off.` }));

export const Retention = t.Object(
  {
    keepLast: count("Keep the n newest backups."),
    keepHourly: count("Keep the newest backup of each of the n most recent hours that have one (the policy zone's clock; the hour repeated when clocks go back counts once)."),
    keepDaily: count("Likewise for calendar days in the policy zone."),
    keepWeekly: count("Likewise for ISO weeks (Monday to Sunday) in the policy zone."),
    keepMonthly: count("Likewise for calendar months in the policy zone."),
    keepYearly: count("Likewise for calendar years in the policy zone."),
    maxAgeDays: t.Optional(
      t.Union([t.Integer({ minimum: 1, maximum: MAX_AGE_DAYS }), t.Null()], {
        description:
          "restic's --keep-within Nd: keep every backup taken after the newest successful backup's time moved back d calendar days on the policy zone's clock " +
          "(so across a DST change a day can be 23 or 25 hours). Measured from the newest backup, not from now: backups that stop coming are not eaten away. " +
          "A backup stamped in the future does not count as the newest here. null: no age rule.",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      "The semantics of restic's forget (0.16+): over the successful backups of one data source under this policy, newest first, the union of what each rule keeps is kept. " +
      "A count rule keeps a backup when its period differs from that of the last backup the rule kept, until it has kept n; " +
      "a rule that still has count left when it reaches the oldest backup keeps that one too. " +
      "At least one rule must keep something. Whatever the rules, the newest successful backup is never deleted.",
  },
);

const Algorithm = t.Union([t.Literal("zstd"), t.Literal("gzip"), t.Literal("none")]);

export const Compression = t.Object(
  {
    algorithm: t.Optional(Algorithm),
    level: t.Optional(t.Integer({ minimum: 0, maximum: 22, description: "zstd 1–19 (default 3), gzip 1–9 (default 6); ignored (stored as 0) for none." })),
  },
  { additionalProperties: false },
);

export const Encryption = t.Object(
  {
    enabled: t.Optional(t.Boolean({ default: true })),
    recipients: t.Optional(
      t.Array(t.String({ maxLength: 200, examples: ["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"] }), {
        maxItems: 20,
        description: "Extra age X25519 public keys (age1…) that can also decrypt the backups.",
      }),
    ),
  },
  { additionalProperties: false },
);

const Name = t.String({ minLength: 1, maxLength: 100, examples: ["nightly"] });
const Cron = t.String({ examples: ["15 2 * * *"], description: "A 5-field cron expression (minute hour day-of-month month day-of-week)." });
const Zone = t.String({ minLength: 1, maxLength: 64, examples: ["Europe/Berlin"], description: "IANA time zone the cron and retention periods are read in (default UTC)." });
const Timeout = t.Integer({
  minimum: 60,
  maximum: 7 * 86_400,
  description:
    "A run is stopped after this many seconds and fails TIMEOUT (default 86400, or the daemon's ceiling when lower). " +
    "The daemon's runner.maxTimeoutSeconds (default 86400) is a ceiling: a larger value is refused (400), and a policy written before the ceiling was lowered runs with the ceiling.",
});
const Retries = t.Integer({ minimum: 0, maximum: 10, description: "Retries after a failed run (default 2)." });
const FingerprintFlag = t.Boolean({
  description:
    "Record each backup's row count per table, taken in the dump's own snapshot (the job's `fingerprint`), so restore drills can prove a restore holds every row (default false). " +
    "PostgreSQL: counted in the exported snapshot pg_dump then dumps (exact). MySQL/MariaDB: counted in a consistent snapshot just before the dump (exact when nothing writes in between). SQLite: counted in the snapshot file. Costs a count(*) of every table per backup.",
});
const Method = t.Union([t.Literal("logical"), t.Literal("physical")], {
  description:
    "`logical` (default): the engine's dump tool (pg_dump, mysqldump, a SQLite snapshot). `physical` (PostgreSQL only): base backups with pg_basebackup on the schedule, " +
    "and while the policy is attached and enabled, continuous WAL archiving over a replication slot: restores to any instant (`POST /restores` with `targetTime`). " +
    "Set at creation; it cannot change.",
});
const FastCheckpoint = t.Boolean({
  description: "Physical only: start each base backup with an immediate checkpoint (pg_basebackup --checkpoint=fast) instead of waiting for a spread one. Default false.",
});

export const PolicyCreate = t.Object(
  {
    name: Name,
    scheduleCron: Cron,
    timezone: t.Optional(Zone),
    destinationId: t.String({ minLength: 1, maxLength: 64, examples: ["dst_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    retention: Retention,
    compression: t.Optional(Compression),
    encryption: t.Optional(Encryption),
    timeoutSeconds: t.Optional(Timeout),
    retries: t.Optional(Retries),
    fingerprint: t.Optional(FingerprintFlag),
    method: t.Optional(Method),
    fastCheckpoint: t.Optional(FastCheckpoint),
  },
  { additionalProperties: false },
);

/** Partial update, JSON-merge-patch style: nested objects merge, `recipients` is replaced whole. */
export const PolicyPatch = t.Object(
  {
    name: t.Optional(Name),
    scheduleCron: t.Optional(Cron),
    timezone: t.Optional(Zone),
    destinationId: t.Optional(t.String({ minLength: 1, maxLength: 64 })),
    retention: t.Optional(Retention),
    compression: t.Optional(Compression),
    encryption: t.Optional(Encryption),
    timeoutSeconds: t.Optional(Timeout),
    retries: t.Optional(Retries),
    fingerprint: t.Optional(FingerprintFlag),
    method: t.Optional(Method),
    fastCheckpoint: t.Optional(FastCheckpoint),
  },
  { additionalProperties: false },
);

const nullableCount = t.Union([Int(), t.Null()]);

export const Policy = t.Object(
  {
    id: t.String({ examples: ["pol_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    name: t.String(),
    scheduleCron: t.String(),
    timezone: t.String(),
    destinationId: t.String(),
    retention: t.Object({
      keepLast: Int(),
      keepHourly: Int(),
      keepDaily: Int(),
      keepWeekly: Int(),
      keepMonthly: Int(),
      keepYearly: Int(),
      maxAgeDays: nullableCount,
    }),
    compression: t.Object({ algorithm: Algorithm, level: Int() }),
    encryption: t.Object({ enabled: t.Boolean(), recipients: t.Array(t.String()) }),
    timeoutSeconds: Int(),
    retries: Int(),
    fingerprint: t.Boolean(),
    method: Method,
    fastCheckpoint: t.Boolean(),
    createdAt: t.String({ format: "date-time" }),
    updatedAt: t.String({ format: "date-time" }),
  },
  { $id: "#/components/schemas/BackupPolicy", title: "BackupPolicy" },
);

export const PolicyParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const PolicyListQuery = t.Object(
  {
    ...PageQuery,
    destinationId: t.Optional(t.String({ maxLength: 64 })),
    q: t.Optional(t.String({ maxLength: 100, description: "Name contains (case-insensitive)." })),
  },
  { additionalProperties: false },
);

export const PolicyDeleteQuery = t.Object(
  { cascade: t.Optional(t.Union([t.Literal("true"), t.Literal("false")], { description: "`true` detaches the policy from its data sources first; jobs stay." })) },
  { additionalProperties: false },
);

export const PolicyPage = pageOf(Policy);
