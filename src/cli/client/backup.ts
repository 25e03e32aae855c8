import { UsageError, type Command } from "../command.ts";
import { ApiError } from "./api.ts";
import { CLIENT_HELP, CLIENT_OPTIONS, connect } from "./connect.ts";
import { lastSuccessfulSize, resolveSource } from "./resolve.ts";
import { report, summary, waitUntilDone } from "./wait.ts";

export const backupCommand: Command = {
  name: "backup",
  summary: "back up a data source now (--wait: follow it with a progress bar)",
  positionals: true,
  usage: `snapdb backup <source name or id> [--policy ID] [--wait] [--quiet | --json]

Queues a backup now (POST /backup-jobs/run-now) and prints the job id. With --wait it
follows the job: a progress bar on a terminal (bytes, rate, elapsed, and an ETA from the
source's last successful backup), plain lines otherwise; exits 0 when the job succeeds,
1 with its error (CODE: message, on stderr) when it fails.

  --policy ID    which policy to run it with (needed when the source has several attachments)
  --wait         wait for the job to end
  -q, --quiet    stdout gets the job id and nothing else, for a script: JOB=$(snapdb backup
                 shop --wait -q). With --wait, the progress bar goes to stderr when that is
                 a terminal (nothing otherwise), and the exit code says how the job ended.
  --json         print the API's JSON (the queued job, or with --wait the finished one)

${CLIENT_HELP}`,
  options: { ...CLIENT_OPTIONS, policy: { type: "string" }, wait: { type: "boolean" }, quiet: { type: "boolean", short: "q" }, json: { type: "boolean" } },
  async run(values, positionals) {
    const [ref, ...extra] = positionals;
    if (!ref) throw new UsageError("name the data source to back up (its name or id)");
    if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
    if (values.quiet && values.json) throw new UsageError("--quiet prints the job id only, --json the whole job: choose one");
    const { api } = connect(values);
    const source = await resolveSource(api, ref);
    const policyId = typeof values.policy === "string" ? values.policy : undefined;
    const estimate = values.wait ? await lastSuccessfulSize(api, source.id) : null;
    const job = await api.post("/backup-jobs/run-now", { dataSourceId: source.id, ...(policyId ? { policyId } : {}) }).catch((err: unknown) => {
      // The API speaks of its field; here the choice is the --policy flag.
      if (err instanceof ApiError && err.code === "INVALID_INPUT" && /policyId/.test(err.apiMessage)) {
        throw new ApiError(err.code, `${err.apiMessage} (here: --policy ID; \`snapdb policies\` lists them)`, err.status);
      }
      throw err;
    });
    if (!values.wait) {
      process.stdout.write(values.json ? `${JSON.stringify(job, null, 2)}\n` : `${job.id}\n`);
      return 0;
    }
    const target = { kind: "backup" as const, id: job.id, total: estimate, exact: false };
    if (values.quiet) {
      // The id first (a script has it even when the job fails); the bar only where someone looks.
      process.stdout.write(`${job.id}\n`);
      const done = await waitUntilDone(api, target, !process.stderr.isTTY, process.stderr);
      if (done.status === "succeeded") return 0;
      process.stderr.write(`${summary(target, done)}\n`);
      return 1;
    }
    if (!values.json) process.stderr.write(`backing up ${source.name} (${source.id}) as ${job.id}\n`);
    const done = await waitUntilDone(api, target, Boolean(values.json));
    return report(target, done, Boolean(values.json));
  },
};
