/** Human formats of the CLI's tables and progress lines. */

export { formatBytes, formatDuration } from "../../lib/human.ts";
import { formatDuration } from "../../lib/human.ts";

/** The span between two RFC 3339 times, or "-" while one is missing. */
export function spanOf(from: string | null | undefined, to: string | null | undefined): string {
  if (!from || !to) return "-";
  return formatDuration(Date.parse(to) - Date.parse(from));
}

/** `2025-11-26 10:00:05Z`: sortable, unambiguous, and short enough for a table. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "-";
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A plain-text table: a header row, then one row per item, columns padded to their widest cell. */
export function renderTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** `key: value` lines of an object, nested objects as dotted keys. */
export function renderObject(obj: unknown, prefix = ""): string {
  if (obj === null || typeof obj !== "object") return `${prefix || "value"}: ${String(obj)}\n`;
  const lines: string[] = [];
  const walk = (value: unknown, key: string) => {
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
      for (const [k, v] of Object.entries(value)) walk(v, key ? `${key}.${k}` : k);
    } else if (Array.isArray(value)) {
      lines.push(`${key}: ${value.length ? value.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v))).join(", ") : "[]"}`);
    } else {
      lines.push(`${key}: ${value === null ? "-" : typeof value === "object" ? "{}" : String(value)}`);
    }
  };
  walk(obj, prefix);
  return lines.join("\n") + "\n";
}
