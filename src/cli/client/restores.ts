import { formatBytes, formatTime, spanOf, truncate } from "./format.ts";
import { resolveSource } from "./resolve.ts";
import { resourceCommand } from "./resources.ts";

export const restoresCommand = resourceCommand({
  name: "restores",
  summary: "list restores, or show one (--json: the API's JSON)",
  path: "/restores",
  noun: "restore",
  plural: "restores",
  filters: [
    { flag: "source", query: "dataSourceId", help: "restores from or into this data source (name or id)", resolve: async (api, v) => (await resolveSource(api, v)).id },
    { flag: "status", query: "status", help: "queued | running | succeeded | failed | canceled" },
  ],
  headers: ["ID", "BACKUP JOB", "TARGET", "DATABASE", "STATUS", "QUEUED", "TOOK", "WRITTEN", "ERROR"],
  showsSources: true,
  row: (r, names) => [
    r.id,
    r.backupJobId,
    names.get(r.targetDataSourceId) ?? r.targetDataSourceId,
    r.targetDatabase ?? "-",
    r.clean ? `${r.status} (clean)` : r.status,
    formatTime(r.queuedAt),
    spanOf(r.startedAt, r.finishedAt),
    formatBytes(r.progress?.bytesWritten),
    r.error ? truncate(`${r.error.code}: ${r.error.message}`, 80) : "",
  ],
});
