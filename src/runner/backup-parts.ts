import { eq } from "drizzle-orm";
import { backupJobs, type StoredPart } from "../db/schema.ts";
import { dumpCommand, DUMP_EXT, startDump } from "../engines/dump.ts";
import { pinTarget, ProbeError } from "../engines/network.ts";
import { toolOutput } from "../engines/tool-stream.ts";
import type { SourceTarget } from "../engines/types.ts";
import { globalsCommand, GLOBALS_PART, isWholeServer, listServerDatabases, mysqlGlobalsStream, partFileName, serverHasDatabase } from "../engines/whole-server.ts";
import { folderOf } from "../storage/keys.ts";
import { formatOf, recipientsFor, runBackup, storeDump, type BackupDeps, type BackupPlan, type BackupResult, type DumpSource, type JobRow, type Progress, type StoredDump } from "./backup.ts";
import { COMPRESSION_EXT } from "./compression.ts";
import { JobSetupError } from "./job-error.ts";

/** A whole-server job's result: the job's figures are the sums of its parts', its sha256 is each part's own. */
export interface ServerBackupResult extends Omit<BackupResult, "sha256"> {
  sha256: string | null;
  parts: StoredPart[] | null;
}

/**
 * A job of any data source: one file, or for a whole server (`database: "*"`) one file per
 * database plus one for the globals (`runServerBackup`).
 */
export async function runJobBackup(
  deps: BackupDeps,
  job: JobRow,
  plan: BackupPlan,
  signal: AbortSignal,
  progress: Progress,
  onObjectKey: (key: string) => void,
  opts: { partsConcurrency: number },
): Promise<ServerBackupResult> {
  if (!isWholeServer(plan.source)) return { ...(await runBackup(deps, job, plan, signal, progress, onObjectKey)), parts: null };
  return runServerBackup(deps, job, plan, signal, progress, onObjectKey, opts);
}

/**
 * Counters of one part that also add to the job's: each part's own stay exact (what the
 * chain sets absolutely, zstd's totals, moves the job's by the difference).
 */
function partProgress(job: Progress): Progress {
  let bytesIn = 0;
  let bytesStored = 0;
  return {
    get bytesIn() {
      return bytesIn;
    },
    set bytesIn(v: number) {
      job.bytesIn += v - bytesIn;
      bytesIn = v;
    },
    get bytesStored() {
      return bytesStored;
    },
    set bytesStored(v: number) {
      job.bytesStored += v - bytesStored;
      bytesStored = v;
    },
  };
}

/** The error of a part, its message naming the part (the code, and whether it is retried, stay the error's own). */
function ofPart(err: unknown, part: StoredPart): unknown {
  const label = part.kind === "globals" ? "globals (roles, users, grants)" : `database ${JSON.stringify(part.name)}`;
  if (err instanceof ProbeError) return new ProbeError({ ...err.verifyError, message: `${label}: ${err.verifyError.message}` }, { cause: err.cause });
  if (err instanceof Error) err.message = `${label}: ${err.message}`;
  return err;
}

/** Runs `work` over `items`, at most `limit` at once, in order of the list. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
}

/**
 * A whole server in one job. The databases are found now (a database created since the last
 * run is in, a dropped one out); the job's folder and every part's key are recorded on the
 * job before any byte is stored (so recovery after a crash removes them all); then the
 * globals and each database go through the same pipeline as any backup (`storeDump`), up to
 * `partsConcurrency` at once, in name order. The job succeeds only if every part did: the
 * first failure stops the others and fails the job (the queue then removes every part
 * stored). A database that no longer exists when its part fails (dropped while the job ran)
 * is skipped with a note, not a failure.
 */
export async function runServerBackup(
  deps: BackupDeps,
  job: JobRow,
  plan: BackupPlan,
  signal: AbortSignal,
  progress: Progress,
  onObjectKey: (key: string) => void,
  opts: { partsConcurrency: number },
): Promise<ServerBackupResult> {
  const format = { ...formatOf(plan.source.engine, plan.compression, plan.encrypt), wholeServer: true };
  const sqlExt = `${DUMP_EXT.sql}${COMPRESSION_EXT[plan.compression.algorithm]}${plan.encrypt ? ".age" : ""}`;
  const recipients = await recipientsFor(deps, job, plan);
  const target = await pinTarget(deps.targetOf(plan.source), deps.outbound);
  const databases = await listServerDatabases(target, { signal });
  if (databases.some((d) => d.name === GLOBALS_PART)) {
    throw new JobSetupError("INVALID_TARGET", `the server has a database named ${JSON.stringify(GLOBALS_PART)}, the name of the globals part: list it in excludeDatabases`);
  }
  const at = new Date(job.startedAt ?? Date.now());
  const keyOf = (file: string, ext: string) => deps.storage.objectKeyFor(plan.destination, { dataSourceId: job.dataSourceId, jobId: job.id, ext, at, part: file });
  const pending = { objectKey: null, sizeBytes: null, storedBytes: null, sha256: null };
  const parts: StoredPart[] = [
    { ...pending, name: GLOBALS_PART, kind: "globals", objectKey: keyOf("globals", sqlExt) },
    ...databases.map(
      (d): StoredPart => ({
        ...pending,
        name: d.name,
        kind: "database",
        objectKey: keyOf(partFileName({ name: d.name, kind: "database" }), format.ext),
        ...(target.engine === "postgres" ? {} : { charset: d.charset ?? null, collation: d.collation ?? null }),
      }),
    ),
  ];
  const writeParts = async () => await deps.db.update(backupJobs).set({ parts }).where(eq(backupJobs.id, job.id));
  onObjectKey(folderOf(parts[0]!.objectKey!));
  await writeParts();

  const stop = new AbortController();
  const partsSignal = AbortSignal.any([signal, stop.signal]);
  let failure: { error: unknown } | null = null;
  const pipelines = new Set<BackupResult["pipeline"]>();
  await eachLimited(parts, opts.partsConcurrency, async (part) => {
    if (partsSignal.aborted) return;
    let stored: StoredDump;
    try {
      const source = part.kind === "globals" ? await globalsSource(deps, target) : databaseSource(deps, target, part.name);
      stored = await storeDump(deps, plan, recipients, source, part.objectKey!, partsSignal, partProgress(progress));
    } catch (err) {
      // Stopped because another part failed first: that one is the job's error.
      if (failure || signal.aborted) return;
      if (part.kind === "database" && !(await serverHasDatabase(target, part.name, signal).catch(() => true))) {
        Object.assign(part, pending, { note: "the database was dropped while the backup ran: skipped" });
        await writeParts();
        return;
      }
      failure = { error: ofPart(err, part) };
      stop.abort();
      return;
    }
    Object.assign(part, { sizeBytes: stored.sizeBytes, storedBytes: stored.storedBytes, sha256: stored.sha256 });
    pipelines.add(stored.pipeline);
    await writeParts();
  });
  if (failure) throw (failure as { error: unknown }).error;
  if (signal.aborted) throw new Error("aborted");
  const sum = (f: "sizeBytes" | "storedBytes") => parts.reduce((n, p) => n + (p[f] ?? 0), 0);
  return {
    pipeline: pipelines.has("daemon") ? "daemon" : pipelines.has("tools") ? "tools" : "tools-to-file",
    sizeBytes: sum("sizeBytes"),
    storedBytes: sum("storedBytes"),
    sha256: null,
    // Row counts are per database; a whole server's drill is not supported, so none is taken.
    fingerprint: null,
    objectKey: folderOf(parts[0]!.objectKey!),
    format,
    parts,
  };
}

/** The globals as a tool's output, or (MySQL tools without `--system`) as SQL made in-process. */
async function globalsSource(deps: BackupDeps, target: SourceTarget): Promise<DumpSource> {
  const command = await globalsCommand(target, deps.dumpEnv);
  if (command) return { command, stream: (s) => toolOutput(command.argv, { toolPath: deps.dumpEnv.toolPath, secretEnv: command.secretEnv, signal: s }) };
  return { command: null, stream: (s) => mysqlGlobalsStream(target, s) };
}

/** One database of the server, dumped exactly as a single-database source's would be. */
function databaseSource(deps: BackupDeps, target: SourceTarget, database: string): DumpSource {
  const one = { ...target, database };
  return { command: dumpCommand(one, deps.dumpEnv), stream: (s) => startDump(one, deps.dumpEnv, s) };
}
