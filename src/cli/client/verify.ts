import { UsageError, type Command } from "../command.ts";
import { CLIENT_HELP, CLIENT_OPTIONS, connect } from "./connect.ts";
import { formatBytes, formatDuration } from "./format.ts";
import { jobFileOf } from "./job-file.ts";

/** Without a terminal, a line this often while the daemon reads. */
const PLAIN_EVERY_MS = 5000;

/**
 * "verifying … elapsed 0:07" while the POST runs: redrawn in place on a terminal, a plain
 * line every few seconds elsewhere. The daemon reports no progress for a verify, only the end.
 */
function elapsedTicker(out: NodeJS.WriteStream, label: string): () => void {
  const started = Date.now();
  const text = () => `${label}  verifying  elapsed ${formatDuration(Date.now() - started)}`;
  if (out.isTTY) {
    const draw = () => out.write(`\r${text()}\x1b[K`);
    draw();
    const timer = setInterval(draw, 250);
    return () => {
      clearInterval(timer);
      out.write("\r\x1b[K");
    };
  }
  out.write(`${text()}\n`);
  const timer = setInterval(() => out.write(`${text()}\n`), PLAIN_EVERY_MS);
  return () => clearInterval(timer);
}

export const verifyCommand: Command = {
  name: "verify",
  summary: "re-read a backup's stored file: size, sha256, decrypts and decompresses",
  positionals: true,
  usage: `snapdb verify <job id> [--part NAME] [--wait] [--json]

POST /backup-jobs/{id}/verify: the daemon re-reads the stored file and checks its size,
sha256, and that it decrypts and decompresses. Prints "ok: …" and exits 0, or prints
the failure (CODE: message) on stderr and exits 1.

The check is synchronous: the command always waits for the daemon's answer, however long
the file takes to read (no time limit). --wait says so out loud: while it runs it shows
the time elapsed (a line redrawn on a terminal, a line every 5 s in a pipe or a log).

A whole-server backup (a data source with database "*") is one file per database plus one
for the globals: name the one to verify with --part (without it, the parts are listed).

  --part NAME   a whole-server backup's file: a database's name, or :globals
  --wait        show the elapsed time while the daemon reads the file
  --json        print the API's JSON (and no elapsed lines)

${CLIENT_HELP}`,
  options: { ...CLIENT_OPTIONS, part: { type: "string" }, wait: { type: "boolean" }, json: { type: "boolean" } },
  async run(values, positionals) {
    const [jobId, ...extra] = positionals;
    if (!jobId) throw new UsageError("name the backup job to verify (job_…)");
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const { api } = connect(values);
    // The job first: a whole-server one without --part is told its parts before anything is read.
    const job = await api.get(`/backup-jobs/${encodeURIComponent(jobId)}`);
    const { part } = jobFileOf(job, typeof values.part === "string" ? values.part : undefined, "verify");
    const label = part === null ? job.id : `${job.id} (part ${part})`;
    const stop = values.wait && !values.json ? elapsedTicker(process.stdout, label) : () => {};
    let result: any;
    try {
      result = await api.post(`/backup-jobs/${encodeURIComponent(job.id)}/verify`, undefined, { query: { part: part ?? undefined }, timeoutMs: null });
    } finally {
      stop();
    }
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (result.ok) {
      if (!values.json) {
        process.stdout.write(`ok: ${label}: ${formatBytes(result.sizeBytes)} dump, ${formatBytes(result.storedBytes)} stored, sha256 ${result.sha256}\n`);
      }
      return 0;
    }
    process.stderr.write(`failed: ${result.error?.code ?? "UNKNOWN"}: ${result.error?.message ?? "no reason given"}\n`);
    return 1;
  },
};
