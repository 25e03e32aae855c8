import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { link, open, rm } from "node:fs/promises";
import { ExitError, UsageError, type Command } from "../command.ts";
import { ApiError } from "./api.ts";
import { CLIENT_HELP, CLIENT_OPTIONS, connect } from "./connect.ts";
import { formatBytes } from "./format.ts";
import { jobFileOf } from "./job-file.ts";
import { ProgressView } from "./progress.ts";

/** The link only has to be valid when the transfer starts. */
const LINK_SECONDS = 300;

async function linkError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    if (typeof body?.code === "string" && typeof body?.message === "string") return new ApiError(body.code, body.message, res.status);
  } catch {}
  return new ApiError("UNAVAILABLE", `the download answered HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`, res.status);
}

export const downloadCommand: Command = {
  name: "download",
  summary: "download a backup's stored file and check its sha256",
  positionals: true,
  usage: `snapdb download <job id> [--part NAME] [-o FILE]

Asks for a download link (POST /backup-jobs/{id}/download-link), streams the file into
FILE (default: the object's own name, e.g. job_….dump.zst.age, in the current directory)
and checks its size and sha256 against the job's. A mismatch removes the file and exits 1.
FILE is written under FILE.part, mode 0600, and moved there only once it checked out; an
existing FILE is never overwritten. -o - writes to stdout (checked at the end: exit 1 on
a mismatch).

A whole-server backup (a data source with database "*") is one file per database plus one
for the globals: name the one to fetch with --part (without it, the parts are listed).

  --part NAME         a whole-server backup's file: a database's name, or :globals
  -o, --output FILE   where to write it (- for stdout; a part's default: job_…-NAME.…)

${CLIENT_HELP}`,
  options: { ...CLIENT_OPTIONS, output: { type: "string", short: "o" }, part: { type: "string" } },
  async run(values, positionals) {
    const [jobId, ...extra] = positionals;
    if (!jobId) throw new UsageError("name the backup job to download (job_…)");
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const { api } = connect(values);
    const job = await api.get(`/backup-jobs/${encodeURIComponent(jobId)}`);
    const stored = jobFileOf(job, typeof values.part === "string" ? values.part : undefined, "download");
    const output = typeof values.output === "string" ? values.output : stored.fileName;
    const toStdout = output === "-";
    if (!toStdout && existsSync(output)) throw new ExitError(`${output} already exists: remove it or pass -o another name`);

    const grant = await api.post(`/backup-jobs/${encodeURIComponent(job.id)}/download-link`, { expiresInSeconds: LINK_SECONDS }, { query: { part: stored.part ?? undefined } });
    // No bearer token here: the link is its own credential (and may point at S3, which must not see ours).
    let res: Response;
    try {
      res = await fetch(grant.url);
    } catch (err) {
      throw new ApiError("UNAVAILABLE", `cannot fetch the download link: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) throw await linkError(res);

    const partial = `${output}.part`;
    const file = toStdout ? null : await open(partial, "wx", 0o600);
    const hash = createHash("sha256");
    const view = new ProgressView(process.stderr, { id: job.id, total: stored.storedBytes, exact: true });
    const redraw = view.tty ? setInterval(() => view.render(), 100) : null;
    let size = 0;
    try {
      for await (const chunk of res.body) {
        hash.update(chunk);
        size += chunk.byteLength;
        if (file) await file.write(chunk);
        else if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once("drain", r));
        if (view.tty) view.update("downloading", size);
      }
      if (file) await file.sync();
    } catch (err) {
      if (file) await rm(partial, { force: true });
      throw new ApiError("UNAVAILABLE", `the download broke off after ${formatBytes(size)}: ${(err as Error).message}`);
    } finally {
      if (redraw) clearInterval(redraw);
      view.clear();
      await file?.close();
    }
    const sha256 = hash.digest("hex");
    if (sha256 !== stored.sha256 || (stored.storedBytes !== null && size !== stored.storedBytes)) {
      if (file) await rm(partial, { force: true });
      throw new ApiError("CHECKSUM_MISMATCH", `got ${size} bytes with sha256 ${sha256}; the job recorded ${stored.storedBytes} bytes with sha256 ${stored.sha256}${file ? " (nothing was kept)" : ""}`);
    }
    if (file) {
      // link, not rename: a file that appeared at FILE meanwhile is not overwritten either.
      try {
        await link(partial, output);
      } finally {
        await rm(partial, { force: true });
      }
    }
    const said = `${toStdout ? "wrote" : `wrote ${output}:`} ${formatBytes(size)}, sha256 ${sha256} matches the job's\n`;
    (toStdout ? process.stderr : process.stdout).write(said);
    return 0;
  },
};
