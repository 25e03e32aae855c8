import { eq } from "drizzle-orm";
import { encryptStream } from "../crypto/age.ts";
import { ensureOrgRecipient, orgIdentity } from "../crypto/org-keys.ts";
import type { SecretBox } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import { type backupJobs, backupPolicies, dataSources, storageDestinations } from "../db/schema.ts";
import { DUMP_EXT, DUMP_FORMAT, dumpCommand, startDump, type DumpCommand, type DumpEnv } from "../engines/dump.ts";
import type { Fingerprint } from "../engines/fingerprint.ts";
import { pinSqlitePath, type SqlitePathPolicy } from "../engines/sqlite-path.ts";
import { pinTarget } from "../engines/network.ts";
import type { SourceTarget } from "../engines/types.ts";
import { slotNameOf } from "../engines/physical.ts";
import type { Logger } from "../lib/logger.ts";
import { toolOutput } from "../engines/tool-stream.ts";
import { countingTap, sha256Tap } from "../lib/streams.ts";
import type { OutboundPolicy } from "../net/outbound-policy.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import { chainIntoFile, chainStream, planBackupChain } from "./backup-chain.ts";
import { takeFingerprint } from "./backup-fingerprint.ts";
import { COMPRESSION_EXT, compressStage, type Compression } from "./compression.ts";
import { JobSetupError } from "./job-error.ts";
import { physicalFormatOf, preparePhysicalBackup, recordSlotReset, withBackupLabel, type PhysicalInfo } from "./physical-backup.ts";
import { readBackupLabel, type BackupLabel } from "./backup-label.ts";

export type JobRow = typeof backupJobs.$inferSelect;
type DataSourceRow = typeof dataSources.$inferSelect;

export interface BackupDeps {
  db: Db;
  secrets: SecretBox;
  storage: StorageRegistry;
  dumpEnv: DumpEnv;
  /** Decrypts a data source's credentials into what an engine needs (the data source module's). */
  targetOf(row: DataSourceRow): SourceTarget;
  /** Where a data source's host may resolve to (config `network`). */
  outbound: OutboundPolicy;
  /** Where SQLite sources may be: checked again at every run (a file may have become a symlink). */
  sqlitePaths: SqlitePathPolicy;
  /** What a job says outside its own record (a replication slot made again). */
  logger?: Logger;
}

/**
 * The data source as the engines see it; for SQLite its path checked against the host
 * boundary of the job's organisation now (by name, then once more through its directory
 * opened for that look, closed again here) and replaced by the real path that was checked.
 * The snapshot opens that path by name later, with SQLite's NOFOLLOW: what keeps it leading
 * to the checked file is the directory rule, not a directory held open (sqlite-path.ts).
 */
function backupTargetOf(deps: BackupDeps, row: DataSourceRow, orgId: string): SourceTarget {
  const target = deps.targetOf(row);
  if (target.engine !== "sqlite") return target;
  const pinned = pinSqlitePath(target.path ?? "", deps.sqlitePaths, orgId);
  if (!pinned.ok) throw new JobSetupError(pinned.missing ? "DUMP_FAILED" : "PATH_NOT_ALLOWED", pinned.reason);
  using pin = pinned.pin;
  return { ...target, path: pin.real };
}

/** Live byte counters of a running job, flushed to its row by the queue. */
export interface Progress {
  bytesIn: number;
  bytesStored: number;
}

export interface BackupFormat {
  engine: string;
  dump: string;
  compression: string;
  encrypted: boolean;
  ext: string;
}

export interface BackupResult {
  /**
   * Where the dump's bytes went: tool to tool through OS pipes and by the last tool into
   * the file ("tools-to-file"), tool to tool and then through the daemon to storage
   * ("tools"), or every stage through the daemon ("daemon").
   */
  pipeline: "tools-to-file" | "tools" | "daemon";
  sizeBytes: number;
  storedBytes: number;
  sha256: string;
  objectKey: string;
  format: BackupFormat;
  /** Row counts in the dump's snapshot, when the policy asks for them (`fingerprint: true`). */
  fingerprint: Fingerprint | null;
  /** A base backup's WAL range (policies with method `physical`). */
  physical?: PhysicalInfo;
}

export interface BackupPlan {
  source: DataSourceRow;
  destination: typeof storageDestinations.$inferSelect;
  compression: Compression;
  encrypt: boolean;
  extraRecipients: string[];
  timeoutSeconds: number;
  retries: number;
  fingerprint: boolean;
  /** `physical`: pg_basebackup instead of the engine's dump tool (PostgreSQL). */
  method: "logical" | "physical";
  fastCheckpoint: boolean;
}

/** Everything a job needs, read once when it starts; a missing piece fails the job clearly. */
export async function planBackup(db: Db, job: JobRow): Promise<BackupPlan> {
  const source = (await db.select().from(dataSources).where(eq(dataSources.id, job.dataSourceId)))[0];
  if (!source) throw new JobSetupError("DATA_SOURCE_NOT_FOUND", "the data source was deleted");
  const policy = job.policyId ? (await db.select().from(backupPolicies).where(eq(backupPolicies.id, job.policyId)))[0] : undefined;
  if (!policy) throw new JobSetupError("POLICY_NOT_FOUND", "the job's backup policy was deleted");
  const destinationId = job.destinationId ?? policy.destinationId;
  const destination = (await db.select().from(storageDestinations).where(eq(storageDestinations.id, destinationId)))[0];
  if (!destination) throw new JobSetupError("DESTINATION_NOT_FOUND", "the job's storage destination was deleted");
  return {
    source,
    destination,
    compression: policy.compression as Compression,
    encrypt: policy.encryption.enabled,
    extraRecipients: policy.encryption.recipients ?? [],
    timeoutSeconds: policy.timeoutSeconds,
    retries: policy.retries,
    fingerprint: policy.fingerprint,
    method: policy.method,
    fastCheckpoint: policy.fastCheckpoint,
  };
}

export function formatOf(engine: string, compression: Compression, encrypted: boolean): BackupFormat {
  const dump = DUMP_FORMAT[engine as keyof typeof DUMP_FORMAT];
  const ext = `${DUMP_EXT[dump]}${COMPRESSION_EXT[compression.algorithm]}${encrypted ? ".age" : ""}`;
  return { engine, dump, compression: compression.algorithm, encrypted, ext };
}

/** The age recipients a job's files are encrypted to: the org's own, plus the policy's extra ones. */
export async function recipientsFor(deps: BackupDeps, job: JobRow, plan: BackupPlan): Promise<string[]> {
  return plan.encrypt ? [await ensureOrgRecipient(deps.db, deps.secrets, job.orgId), ...plan.extraRecipients] : [];
}

/**
 * One backup of one database into one file (see `storeDump`). The data source is resolved
 * and checked once, before anything runs; the tools connect to that address.
 * `onObjectKey` runs before any byte is stored, so a crash leaves the key on the job row
 * for recovery to clean (the temp file included).
 */
export async function runBackup(deps: BackupDeps, job: JobRow, plan: BackupPlan, signal: AbortSignal, progress: Progress, onObjectKey: (key: string) => void): Promise<BackupResult> {
  const format = plan.method === "physical" ? physicalFormatOf(plan.compression, plan.encrypt) : formatOf(plan.source.engine, plan.compression, plan.encrypt);
  const objectKey = deps.storage.objectKeyFor(plan.destination, {
    dataSourceId: job.dataSourceId,
    jobId: job.id,
    ext: format.ext,
    at: new Date(job.startedAt ?? Date.now()),
  });
  const recipients = await recipientsFor(deps, job, plan);
  // Before the object key is recorded: a refused source leaves nothing to clean up.
  const target = await pinTarget(backupTargetOf(deps, plan.source, job.orgId), deps.outbound);
  // A base backup: its slot first (the WAL it needs is kept from then on), then pg_basebackup.
  const physical = plan.method === "physical" ? await preparePhysicalBackup(target, deps.dumpEnv.toolPath, { dataSourceId: job.dataSourceId, jobId: job.id }, plan.fastCheckpoint, signal) : null;
  if (physical?.slotReset) await recordSlotReset(deps.db, deps.logger, { orgId: job.orgId, dataSourceId: job.dataSourceId, slot: slotNameOf(job.dataSourceId), reason: physical.slotReset });
  // Open (PostgreSQL: its transaction) until this function is left, i.e. until the dump is over.
  await using fingerprint = await takeFingerprint(plan.fingerprint && !physical, target, deps.dumpEnv, signal);
  onObjectKey(objectKey);
  // The dump tool joins the fingerprint's snapshot (PostgreSQL: --snapshot) through its env.
  const dumpEnv = fingerprint.dumpEnv;
  const source: DumpSource = physical
    ? {
        command: physical.command,
        stream: (s) => toolOutput(physical.command.argv, { toolPath: deps.dumpEnv.toolPath, secretEnv: physical.command.secretEnv, signal: s }),
      }
    : { command: dumpCommand(target, dumpEnv), stream: (s) => startDump(target, dumpEnv, s) };
  const stored = await storeDump(deps, plan, recipients, source, objectKey, signal, progress);
  if (!physical) return { ...stored, format, fingerprint: fingerprint.result() };
  const info = await physical.finish();
  return { ...stored, format, fingerprint: fingerprint.result(), physical: withBackupLabel(info, await storedBackupLabel(deps, job, plan, stored)) };
}

/** The stored base backup's backup_label (backup-label.ts); null, and logged, when it cannot be read back. */
async function storedBackupLabel(deps: BackupDeps, job: JobRow, plan: BackupPlan, stored: StoredDump): Promise<BackupLabel | null> {
  try {
    const label = await readBackupLabel(
      deps.storage.driverFor(plan.destination),
      { objectKey: stored.objectKey, storedBytes: stored.storedBytes, compression: plan.compression.algorithm, encrypted: plan.encrypt },
      async () => (await orgIdentity(deps.db, deps.secrets, job.orgId)) ?? "",
    );
    if (!label) deps.logger?.warn("the base backup does not start with a backup_label; its WAL range is the server's positions around it", { jobId: job.id });
    return label;
  } catch (error) {
    deps.logger?.warn("could not read the base backup's backup_label back; its WAL range is the server's positions around it", { jobId: job.id, error });
    return null;
  }
}

/** What a file of a backup is made from: a dump tool, or a stream the daemon makes. */
export interface DumpSource {
  /** The tool to run in the chain of tools; null: only `stream` (a SQLite snapshot, SQL made in-process). */
  command: DumpCommand | null;
  /** The same dump as a stream through the daemon (when the chain cannot be used). */
  stream(signal: AbortSignal): ReadableStream<Uint8Array>;
}

export type StoredDump = Omit<BackupResult, "format" | "fingerprint" | "physical">;

/**
 * One dump stored as one file, streamed end to end: dump → compress → encrypt → sha256 →
 * storage, by the fastest of three paths that write the same standard file (backup-chain.ts):
 * - to local storage, the chain of tools `pg_dump | zstd | age` writes the temp file
 *   itself and the daemon hashes it as it grows, then fsyncs and renames it: no byte of the
 *   backup passes through the daemon;
 * - to S3, the same chain, with the daemon counting, hashing and uploading its output;
 * - otherwise (SQLite, gzip, encryption without compression, no `zstd`), every stage
 *   through the daemon.
 * Nothing is buffered whole; each stage pulls from the one before (or a tool writes at the
 * disk's pace), so a slow destination slows the dump. The file is stored only if every
 * tool exited 0, and an error or abort anywhere removes whatever was written.
 */
export async function storeDump(
  deps: BackupDeps,
  plan: Pick<BackupPlan, "destination" | "compression" | "encrypt">,
  recipients: string[],
  source: DumpSource,
  objectKey: string,
  signal: AbortSignal,
  progress: Progress,
): Promise<StoredDump> {
  const driver = deps.storage.driverFor(plan.destination);
  // Until the stream reaches the driver (which cancels it on failure), a setup error must
  // stop the tools it already started: they share this signal.
  const setup = new AbortController();
  const stagesSignal = AbortSignal.any([signal, setup.signal]);
  const result = (pipeline: BackupResult["pipeline"], r: { sha256: string; storedBytes: number }): StoredDump => ({
    pipeline,
    sizeBytes: progress.bytesIn,
    objectKey,
    ...r,
  });
  let stream: ReadableStream<Uint8Array> | null = null;
  let pipeline: BackupResult["pipeline"] = "daemon";
  try {
    const command = source.command;
    const chain = command ? await planBackupChain(command, plan.compression, recipients, deps.dumpEnv, progress) : null;
    // A directory the tools cannot write into directly (a FUSE mount refusing read-write
    // opens, say) still takes a put: the stream path below says what is wrong, if anything.
    const file = chain && (chain.encrypted || !plan.encrypt) ? await driver.openDirectWrite?.(objectKey, { signal }).catch(() => null) : null;
    if (chain && file) {
      try {
        const written = await chainIntoFile(chain, deps.dumpEnv, stagesSignal, file, (n) => (progress.bytesStored += n));
        if (written) {
          // Only the bytes that were hashed may become the object.
          const put = await file.commit(written.size);
          return await result("tools-to-file", { sha256: written.sha256, storedBytes: put.size });
        }
      } finally {
        await file.discard();
      }
    }
    if (chain) {
      stream = await chainStream(chain, deps.dumpEnv, stagesSignal);
      if (stream) {
        pipeline = "tools";
        if (plan.encrypt && !chain.encrypted) stream = await encryptStream(stream, recipients);
      }
    }
    if (!stream) {
      stream = source.stream(stagesSignal).pipeThrough(countingTap((n) => (progress.bytesIn += n)));
      const compress = compressStage(plan.compression, deps.dumpEnv.toolPath, stagesSignal);
      if (compress) stream = stream.pipeThrough(compress);
      if (plan.encrypt) stream = await encryptStream(stream, recipients);
    }
  } catch (err) {
    setup.abort();
    throw err;
  }
  const hash = sha256Tap((n) => (progress.bytesStored += n));
  stream = stream.pipeThrough(hash.stream);
  const put = await driver.put(objectKey, stream, { signal, contentType: "application/octet-stream" });
  return await result(pipeline, { sha256: hash.digest(), storedBytes: put.size });
}
