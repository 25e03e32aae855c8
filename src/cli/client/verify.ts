import { UsageError, type Command } from "../command.ts";
import { CLIENT_HELP, CLIENT_OPTIONS, connect } from "./connect.ts";
import { formatBytes } from "./format.ts";

export const verifyCommand: Command = {
  name: "verify",
  summary: "re-read a backup's stored file: size, sha256, decrypts and decompresses",
  positionals: true,
  usage: `snapdb verify <job id> [--json]

POST /backup-jobs/{id}/verify: the daemon re-reads the stored file and checks its size,
sha256, and that it decrypts and decompresses. Prints "ok: …" and exits 0, or prints
the failure (CODE: message) on stderr and exits 1.

  --json   print the API's JSON

${CLIENT_HELP}`,
  options: { ...CLIENT_OPTIONS, json: { type: "boolean" } },
  async run(values, positionals) {
    const [jobId, ...extra] = positionals;
    if (!jobId) throw new UsageError("name the backup job to verify (job_…)");
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const { api } = connect(values);
    const result = await api.post(`/backup-jobs/${encodeURIComponent(jobId)}/verify`);
    if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    if (result.ok) {
      if (!values.json) {
        process.stdout.write(`ok: ${jobId}: ${formatBytes(result.sizeBytes)} dump, ${formatBytes(result.storedBytes)} stored, sha256 ${result.sha256}\n`);
      }
      return 0;
    }
    process.stderr.write(`failed: ${result.error?.code ?? "UNKNOWN"}: ${result.error?.message ?? "no reason given"}\n`);
    return 1;
  },
};
