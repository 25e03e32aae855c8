import { resourceCommand } from "./resources.ts";

/** `last 7, daily 7, weekly 4` */
function retention(r: Record<string, number | null>): string {
  const parts = [
    ["last", r.keepLast],
    ["hourly", r.keepHourly],
    ["daily", r.keepDaily],
    ["weekly", r.keepWeekly],
    ["monthly", r.keepMonthly],
    ["yearly", r.keepYearly],
  ]
    .filter(([, n]) => n)
    .map(([k, n]) => `${k} ${n === -1 ? "all" : n}`);
  if (r.maxAgeDays) parts.push(`${r.maxAgeDays} days`);
  return parts.join(", ") || "-";
}

export const policiesCommand = resourceCommand({
  name: "policies",
  summary: "list backup policies, or show one (--json: the API's JSON)",
  path: "/backup-policies",
  noun: "backup policy",
  plural: "backup policies",
  filters: [{ flag: "name", query: "q", help: "name contains (case-insensitive)" }],
  headers: ["ID", "NAME", "SCHEDULE", "ZONE", "DESTINATION", "KEEP", "COMPRESSION", "ENCRYPTED"],
  row: (p) => [
    p.id,
    p.name,
    p.scheduleCron,
    p.timezone,
    p.destinationId,
    retention(p.retention ?? {}),
    p.compression?.algorithm === "none" ? "none" : `${p.compression?.algorithm} ${p.compression?.level}`,
    p.encryption?.enabled ? "yes" : "no",
  ],
});
