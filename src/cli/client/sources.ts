import { formatTime } from "./format.ts";
import { resourceCommand } from "./resources.ts";

function where(s: any): string {
  if (s.path) return s.path;
  return `${s.host ?? "?"}:${s.port ?? "-"}/${s.database ?? ""}`;
}

function verified(s: any): string {
  const v = s.lastVerify;
  if (!v) return "-";
  return v.ok ? "ok" : `failed ${v.error?.code ?? ""}`.trim();
}

export const sourcesCommand = resourceCommand({
  name: "sources",
  summary: "list data sources, or show one (--json: the API's JSON)",
  path: "/data-sources",
  noun: "data source",
  plural: "data sources",
  filters: [
    { flag: "engine", query: "engine", help: "postgres | mysql | mariadb | sqlite" },
    { flag: "name", query: "q", help: "name contains (case-insensitive)" },
  ],
  headers: ["ID", "NAME", "ENGINE", "WHERE", "USER", "VERIFY", "CREATED"],
  row: (s) => [s.id, s.name, s.engine, where(s), s.credentials?.username ?? "-", verified(s), formatTime(s.createdAt)],
});
