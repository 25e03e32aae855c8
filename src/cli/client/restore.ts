import { UsageError, type Command } from "../command.ts";
import { CLIENT_HELP, CLIENT_OPTIONS, connect } from "./connect.ts";
import { resolveSource } from "./resolve.ts";
import { report, waitUntilDone } from "./wait.ts";

export const restoreCommand: Command = {
  name: "restore",
  summary: "restore a backup job's file (--wait: follow it with a progress bar)",
  positionals: true,
  usage: `snapdb restore <job id> [--target-database NAME] [--target-source ID] [--clean] [--wait] [--json]

Queues a restore of that backup (POST /restores) and prints the restore id. A target that
is not empty is refused unless --clean. With --wait it follows the restore (progress of
the stored file read) and exits 0 when it succeeds, 1 with its error when it fails.

  --target-database NAME   restore into this database on the target's server (created if missing)
  --target-source ID       another data source of the same engine (name or id; default: the job's own)
  --clean                  replace what the target holds
  --wait                   wait for the restore to end
  --json                   print the API's JSON

${CLIENT_HELP}`,
  options: {
    ...CLIENT_OPTIONS,
    "target-database": { type: "string" },
    "target-source": { type: "string" },
    clean: { type: "boolean" },
    wait: { type: "boolean" },
    json: { type: "boolean" },
  },
  async run(values, positionals) {
    const [jobId, ...extra] = positionals;
    if (!jobId) throw new UsageError("name the backup job to restore (job_…)");
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const { api } = connect(values);
    const job = await api.get(`/backup-jobs/${encodeURIComponent(jobId)}`);
    const body: Record<string, unknown> = { backupJobId: job.id, clean: Boolean(values.clean) };
    if (typeof values["target-database"] === "string") body.targetDatabase = values["target-database"];
    if (typeof values["target-source"] === "string") body.targetDataSourceId = (await resolveSource(api, values["target-source"])).id;
    const restore = await api.post("/restores", body);
    if (!values.wait) {
      process.stdout.write(values.json ? `${JSON.stringify(restore, null, 2)}\n` : `${restore.id}\n`);
      return 0;
    }
    if (!values.json) process.stderr.write(`restoring ${job.id} as ${restore.id}\n`);
    // The restore reads the stored file from start to end: its size is the exact total.
    const target = { kind: "restore" as const, id: restore.id, total: job.storedBytes ?? null, exact: true };
    const done = await waitUntilDone(api, target, Boolean(values.json));
    return report(target, done, Boolean(values.json));
  },
};
