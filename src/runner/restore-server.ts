import { eq } from "drizzle-orm";
import { restores, type StoredPart } from "../db/schema.ts";
import { pinTarget } from "../engines/network.ts";
import { dropMysqlTables, inspectDatabase, mysqlRestoreCommand, RestoreSetupError, type ToolCommand } from "../engines/restore.ts";
import type { SourceTarget } from "../engines/types.ts";
import { applyGlobals, createMysqlDatabase, dropServerDatabase, failedToCreate, serverPgCreateCommand, serverPgRestoreCommand } from "../engines/whole-server-restore.ts";
import { countingTap } from "../lib/streams.ts";
import { decodeInDaemon, restoreThroughTools, type RestorePipeline } from "./restore-chain.ts";
import { restoreStoredFile, type RestoreDeps, type RestorePlan, type RestoreProgress, type RestoreRow, type RestoreState } from "./restore.ts";

/** What a part is restored by: a restore tool (fed through the chain of tools when it can be), or a consumer of the decoded stream. */
type PartConsumer = { tool: ToolCommand; before?: () => Promise<void> } | { stream: (stream: ReadableStream<Uint8Array>) => Promise<void> };

/**
 * One stored part restored: storage → size + sha256 check (the file's tail held back until
 * both matched) → age decrypt → decompress → its consumer, as a one-file restore reads its
 * file. `onPipeline` is told which pipeline runs.
 */
async function feedPart(
  deps: RestoreDeps,
  plan: RestorePlan,
  part: StoredPart,
  signal: AbortSignal,
  progress: RestoreProgress,
  consumer: PartConsumer,
  onPipeline?: (pipeline: RestorePipeline) => void,
): Promise<void> {
  // As for a one-file restore: a corrupt file is named as such, not as the error it caused downstream.
  await restoreStoredFile(deps, plan, part, signal, progress, async (stream, identity) => {
    if ("tool" in consumer) {
      const writtenBefore = progress.bytesWritten;
      await restoreThroughTools(stream, {
        format: plan.format,
        identity,
        cmd: consumer.tool,
        before: consumer.before,
        env: deps.dumpEnv,
        signal,
        onWritten: (total) => void (progress.bytesWritten = writtenBefore + total),
        onPipeline,
      });
    } else {
      const decoded = await decodeInDaemon(stream, plan.format, identity, deps.dumpEnv.toolPath, signal);
      await consumer.stream(decoded.pipeThrough(countingTap((n) => (progress.bytesWritten += n))));
    }
  });
}

const names = (list: readonly string[]) => list.map((n) => JSON.stringify(n)).join(", ");

/** What the target holds after a failure, database by database: the restore's error message ends with it. */
function stateAfter(engine: SourceTarget["engine"], globalsApplied: boolean, done: string[], failed: { name: string; dropped: boolean } | null, left: string[]): string {
  const out: string[] = [];
  out.push(globalsApplied ? "the globals (roles/users, grants) were applied and stay" : "the globals were not applied");
  if (done.length) out.push(`restored and kept: ${names(done)}`);
  if (failed) {
    const how = failed.dropped
      ? "created by this restore, it was dropped again"
      : engine === "postgres"
        ? "its pg_restore transaction was rolled back: unchanged"
        : "MySQL/MariaDB cannot roll back DDL: it may be partially restored; run the restore again with clean: true";
    out.push(`database ${JSON.stringify(failed.name)}: ${how}`);
  }
  if (left.length) out.push(`not restored: ${names(left)}`);
  return out.join("; ");
}

/**
 * A whole-server backup restored onto the target's server: the globals first (roles/users
 * that exist are tolerated and noted; MySQL grants on tables and routines are applied again
 * once the databases are back), then each chosen database, one after the other, each
 * created as it was if missing (PostgreSQL: pg_restore --create, so with its owner, encoding,
 * its own grants and settings; MySQL: with its character set and collation) and
 * restored through the same checked stream as a one-file restore. A database that is not
 * empty (looked at again now) is refused unless `clean`. If a database fails, the ones
 * restored before it stay, and it is dropped again if this restore created it.
 */
export async function runServerRestore(deps: RestoreDeps, row: RestoreRow, plan: RestorePlan, signal: AbortSignal, progress: RestoreProgress, state: RestoreState): Promise<void> {
  state.note = "nothing on the target was changed";
  const target = await pinTarget(plan.target, deps.outbound);
  const parts = plan.job.parts ?? [];
  const globals = parts.find((p) => p.kind === "globals" && p.objectKey);
  // A restore queued without a choice (not through POST /restores) takes every database.
  const wanted = row.databases ?? parts.filter((p) => p.kind === "database" && p.objectKey).map((p) => p.name);
  const chosen = wanted.map((name) => {
    const part = parts.find((p) => p.kind === "database" && p.name === name && p.objectKey);
    if (!part) throw new RestoreSetupError("BACKUP_FILE_MISSING", `the backup holds no database ${JSON.stringify(name)}`);
    return part;
  });
  const notes: string[] = [];
  const saveNotes = async () => await deps.db.update(restores).set({ notes }).where(eq(restores.id, row.id));

  // Looked at again: the target may have changed since the restore was accepted.
  const found = new Map<string, { exists: boolean; relations: number }>();
  for (const part of chosen) found.set(part.name, await inspectDatabase(target, part.name, signal));
  const full = chosen.filter((p) => found.get(p.name)!.relations > 0).map((p) => p.name);
  if (full.length && !row.clean) throw new RestoreSetupError("TARGET_NOT_EMPTY", `the target's databases ${names(full)} are not empty; restore with clean: true to replace their contents`);

  let globalsApplied = false;
  const done: string[] = [];
  let failed: { name: string; dropped: boolean } | null = null;
  state.note = stateAfter(
    target.engine,
    false,
    [],
    null,
    chosen.map((p) => p.name),
  );
  try {
    let retry = "";
    if (globals) {
      // The globals are small and their client's errors are read line by line: always through the daemon.
      await feedPart(deps, plan, globals, signal, progress, {
        stream: async (stream) => {
          const outcome = await applyGlobals(target, stream, deps.dumpEnv.toolPath, signal);
          retry = outcome.retry;
          if (outcome.existing.length) {
            notes.push(
              `globals: ${outcome.existing.length} role(s)/user(s) already existed and were kept (${outcome.existing.slice(0, 20).join(", ")}${outcome.existing.length > 20 ? ", …" : ""}); the backup's attributes, memberships and grants were applied to them`,
            );
          }
        },
      });
      globalsApplied = true;
      await saveNotes();
    }
    for (const part of chosen) {
      if (signal.aborted) throw new RestoreSetupError("CANCELED", "aborted");
      const before = found.get(part.name)!;
      const toolPath = deps.dumpEnv.toolPath;
      // PostgreSQL: pg_restore --create makes a missing database as it was (owner, its grants, settings).
      const createdByTool = target.engine === "postgres" && !before.exists;
      const created = target.engine !== "postgres" && !before.exists ? await createMysqlDatabase(target, part, signal) : false;
      failed = { name: part.name, dropped: false };
      try {
        const tool = createdByTool
          ? serverPgCreateCommand(target, toolPath)
          : target.engine === "postgres"
            ? serverPgRestoreCommand(target, part.name, row.clean && before.relations > 0, toolPath)
            : mysqlRestoreCommand(target, part.name, toolPath);
        const emptyFirst = target.engine !== "postgres" && row.clean && before.relations > 0;
        const emptyTables = emptyFirst ? async () => void (await dropMysqlTables(target, part.name, signal)) : undefined;
        // "tools" only when every database went through them (the globals always go through the daemon).
        await feedPart(deps, plan, part, signal, progress, { tool, before: emptyTables }, (pipeline) => void (state.pipeline = state.pipeline === "daemon" ? "daemon" : pipeline));
      } catch (err) {
        if (created || (createdByTool && !failedToCreate(err)))
          failed.dropped = await dropServerDatabase(target, part.name).then(
            () => true,
            () => false,
          );
        throw err;
      }
      failed = null;
      done.push(part.name);
    }
    // MySQL grants on tables and routines that failed before their databases were back: again, now.
    if (retry) {
      const again = await applyGlobals(target, new Blob([retry]).stream(), deps.dumpEnv.toolPath, signal);
      if (again.missing.length) notes.push(`globals: ${again.missing.length} grant(s) on tables or routines the target does not have were not applied (${again.missing.slice(0, 10).join("; ")})`);
      await saveNotes();
    }
  } catch (err) {
    const left = chosen.map((p) => p.name).filter((n) => !done.includes(n) && n !== failed?.name);
    state.note = stateAfter(target.engine, globalsApplied, done, failed, left);
    await saveNotes();
    throw err;
  }
}
