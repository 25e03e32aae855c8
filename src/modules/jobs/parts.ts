import type { ServiceContext } from "../../lib/context.ts";
import { AppError, invalidInput } from "../../lib/errors.ts";
import { storedFileOf, type JobRow } from "./service.ts";

/** One stored file of a job, with the figures recorded when it was written. */
export interface JobFile {
  destination: Awaited<ReturnType<typeof storedFileOf>>["destination"];
  key: string;
  storedBytes: number | null;
  sizeBytes: number | null;
  sha256: string | null;
  /** The part's name for a whole-server job; null for a one-file job. */
  part: string | null;
}

/** The stored parts of a whole-server job (skipped databases have none). */
export const storedParts = (job: JobRow) => (job.parts ?? []).filter((p) => p.objectKey !== null);

const listed = (job: JobRow) =>
  storedParts(job)
    .map((p) => JSON.stringify(p.name))
    .join(", ");

/**
 * The file a request means: a one-file job's own (then `part` must be left out), or the part
 * `part` names of a whole-server job (which has several, so leaving it out is a 400 that
 * lists them). A job without a stored file is a 409 (storedFileOf).
 */
export async function jobFileOf(ctx: ServiceContext, job: JobRow, part: string | undefined): Promise<JobFile> {
  const { destination, key } = await storedFileOf(ctx, job);
  if (!job.parts) {
    if (part !== undefined) throw invalidInput("/part", "this backup is one file: leave part out");
    return { destination, key, storedBytes: job.storedBytes, sizeBytes: job.sizeBytes, sha256: job.sha256, part: null };
  }
  if (part === undefined) {
    throw new AppError("INVALID_INPUT", `this whole-server backup has ${storedParts(job).length} files: name one with ?part= (${listed(job)})`, [
      { path: "/part", message: `required: one of ${listed(job)}` },
    ]);
  }
  const found = storedParts(job).find((p) => p.name === part);
  if (!found) throw invalidInput("/part", `the backup has no part ${JSON.stringify(part)}; its parts are ${listed(job)}`);
  return { destination, key: found.objectKey!, storedBytes: found.storedBytes, sizeBytes: found.sizeBytes, sha256: found.sha256, part: found.name };
}
