import type { NotifyEvent } from "./events.ts";

/**
 * What a person reads in a chat or an e-mail: a title, a few labelled facts and a link to
 * the job (or restore) on the daemon. Built from a delivery's stored `data`, so a retry
 * says exactly what the first attempt said.
 */
export interface Message {
  title: string;
  severity: "ok" | "warning" | "error" | "info";
  facts: [string, string][];
  /** The error's message, shown apart (it can be long). */
  detail: string | null;
  link: string | null;
}

type Data = Record<string, any>;

const TITLES: Record<NotifyEvent, [string, Message["severity"]]> = {
  "backup.succeeded": ["Backup succeeded", "ok"],
  "backup.failed": ["Backup failed", "error"],
  "backup.stale": ["No recent backup", "warning"],
  "backup.recovered": ["Backups recovered", "ok"],
  "restore.succeeded": ["Restore succeeded", "ok"],
  "restore.failed": ["Restore failed", "error"],
  "drill.succeeded": ["Restore drill succeeded", "ok"],
  "drill.failed": ["Restore drill failed", "error"],
  "notification.test": ["Test notification", "info"],
};

export function formatBytes(n: number | null | undefined): string | null {
  if (n === null || n === undefined) return null;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(ms: number | null): string | null {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return null;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

const span = (from?: string | null, to?: string | null) => (from && to ? Date.parse(to) - Date.parse(from) : null);

function named(name: unknown, id: unknown): string {
  return typeof name === "string" && name ? `${name} (${id})` : String(id ?? "—");
}

function facts(event: NotifyEvent, d: Data): [string, string | null][] {
  if (event.startsWith("backup.") && event !== "backup.stale") {
    return [
      ["Data source", named(d.dataSourceName, d.dataSourceId)],
      ["Policy", d.policyId ? named(d.policyName, d.policyId) : null],
      ["Status", d.status],
      ["Size", formatBytes(d.sizeBytes)],
      ["Stored", formatBytes(d.storedBytes)],
      ["Duration", formatDuration(span(d.startedAt, d.finishedAt))],
      ["Error", d.error ? d.error.code : null],
      ["Recovered from", d.recoveredFrom ?? null],
      ["Job", d.id],
    ];
  }
  if (event === "backup.stale") {
    return [
      ["Data source", named(d.dataSourceName, d.dataSourceId)],
      ["Policy", named(d.policyName, d.policyId)],
      // Only said when no enabled attachment schedules the source any more.
      ["Attachment", d.attachment === "disabled" || d.attachment === "detached" ? d.attachment : null],
      ["Last success", d.lastSuccessAt ?? "never"],
      ["Stale since", d.staleSince],
      ["Threshold", formatDuration((d.staleAfterSeconds ?? 0) * 1000)],
    ];
  }
  if (event.startsWith("restore.") || event.startsWith("drill.")) {
    return [
      ["Target", named(d.targetDataSourceName, d.targetDataSourceId)],
      ["From backup", d.backupJobId],
      ["Status", d.status],
      ["Duration", formatDuration(span(d.startedAt, d.finishedAt))],
      ["Error", d.error ? d.error.code : null],
      ["Restore", d.id],
    ];
  }
  return [["Channel", named(d.channelName, d.channelId)]];
}

function linkOf(event: NotifyEvent, d: Data, baseUrl: string): string | null {
  if (event === "backup.stale") return `${baseUrl}/backup-jobs?dataSourceId=${encodeURIComponent(d.dataSourceId)}`;
  if (event.startsWith("backup.") && d.id) return `${baseUrl}/backup-jobs/${encodeURIComponent(d.id)}`;
  if ((event.startsWith("restore.") || event.startsWith("drill.")) && d.id) return `${baseUrl}/restores/${encodeURIComponent(d.id)}`;
  return null;
}

function subject(event: NotifyEvent, d: Data): string | null {
  if (event.startsWith("backup.")) return d.dataSourceName ?? d.dataSourceId ?? null;
  if (event.startsWith("restore.") || event.startsWith("drill.")) return d.targetDataSourceName ?? d.targetDataSourceId ?? null;
  return null;
}

/** The readable message of an event; `baseUrl` is the daemon as users reach it (http.publicUrl). */
export function renderMessage(event: NotifyEvent, data: Data, baseUrl: string): Message {
  const [title, severity] = TITLES[event] ?? [event, "info"];
  const about = subject(event, data);
  return {
    title: about ? `${title}: ${about}` : title,
    severity,
    facts: facts(event, data).filter((f): f is [string, string] => f[1] !== null && f[1] !== undefined && f[1] !== ""),
    detail: data.error?.message ?? (event === "notification.test" ? "This channel works: snapdb will send its notifications here." : null),
    link: linkOf(event, data, baseUrl),
  };
}

/** The message as plain text (e-mail body, ntfy, fallbacks). */
export function plainText(m: Message): string {
  const lines = m.facts.map(([k, v]) => `${k}: ${v}`);
  if (m.detail) lines.push("", m.detail);
  if (m.link) lines.push("", m.link);
  return lines.join("\n");
}
