import { formatBytes, formatTime, spanOf, truncate } from "./format.ts";
import { resolveSource } from "./resolve.ts";
import { resourceCommand } from "./resources.ts";

export const jobsCommand = resourceCommand({
  name: "jobs",
  summary: "list backup jobs, or show one (--json: the API's JSON)",
  path: "/backup-jobs",
  noun: "backup job",
  plural: "backup jobs",
  filters: [
    { flag: "source", query: "dataSourceId", help: "a data source's name or id", resolve: async (api, v) => (await resolveSource(api, v)).id },
    { flag: "policy", query: "policyId", help: "a policy id" },
    { flag: "status", query: "status", help: "queued | running | succeeded | failed | canceled" },
    { flag: "trigger", query: "trigger", help: "schedule | manual" },
  ],
  headers: ["ID", "SOURCE", "STATUS", "TRIGGER", "QUEUED", "TOOK", "SIZE", "STORED", "ERROR"],
  showsSources: true,
  row: (j, names) => [
    j.id,
    names.get(j.dataSourceId) ?? j.dataSourceId,
    j.status,
    j.trigger,
    formatTime(j.queuedAt),
    spanOf(j.startedAt, j.finishedAt),
    formatBytes(j.sizeBytes ?? (j.status === "running" ? j.progress?.bytesIn : null)),
    formatBytes(j.storedBytes),
    j.error ? truncate(`${j.error.code}: ${j.error.message}`, 80) : "",
  ],
});
