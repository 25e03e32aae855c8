import { basename } from "node:path";
import { UsageError } from "../command.ts";
import { ApiError } from "./api.ts";

/** One stored file of a backup job: the job's own, or one part of a whole-server job. */
export interface JobFile {
  /** The part's name; null for a one-file job. */
  part: string | null;
  objectKey: string;
  storedBytes: number | null;
  sizeBytes: number | null;
  sha256: string | null;
  /** What a download is saved as by default (the daemon's own name for a part's link). */
  fileName: string;
}

interface Part {
  name: string;
  objectKey: string | null;
  sizeBytes: number | null;
  storedBytes: number | null;
  sha256: string | null;
}

/** A word as a shell reads it back: quoted when it holds anything but plain characters. */
const shellWord = (s: string) => (/^[\w.@%+=:,/-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The file `part` names of `job`. A whole-server job (`parts`) has one file per database and
 * one for the globals, so it needs --part; a one-file job refuses it. The messages list the
 * parts and the command to type, since the API's own names them as ?part=.
 */
export function jobFileOf(job: any, part: string | undefined, command: "download" | "verify"): JobFile {
  if (job.status !== "succeeded") throw new ApiError("CONFLICT", `${job.id} is ${job.status}: it has no file to ${command}`);
  if (job.fileDeletedAt) throw new ApiError("NOT_FOUND", `the file of ${job.id} was deleted at ${job.fileDeletedAt}`);
  if (!Array.isArray(job.parts)) {
    if (part !== undefined) throw new UsageError(`${job.id} is one file, not a whole-server backup: leave --part out`);
    if (!job.objectKey) throw new ApiError("CONFLICT", `${job.id} has no file to ${command}`);
    return { part: null, objectKey: job.objectKey, storedBytes: job.storedBytes, sizeBytes: job.sizeBytes, sha256: job.sha256, fileName: basename(job.objectKey) };
  }
  const stored = (job.parts as Part[]).filter((p) => p.objectKey !== null);
  const names = stored.map((p) => shellWord(p.name)).join(", ");
  if (part === undefined) {
    throw new UsageError(
      `${job.id} is a whole-server backup of ${stored.length} files, one per database and one for the globals: name one with --part NAME.\n` +
        `Its parts: ${names}${stored[0] ? `\ne.g. snapdb ${command} ${job.id} --part ${shellWord(stored[0].name)}` : ""}`,
    );
  }
  const found = stored.find((p) => p.name === part);
  if (!found) throw new UsageError(`${job.id} has no part "${part}"; its parts: ${names}`);
  return { part: found.name, objectKey: found.objectKey!, storedBytes: found.storedBytes, sizeBytes: found.sizeBytes, sha256: found.sha256, fileName: `${job.id}-${basename(found.objectKey!)}` };
}
