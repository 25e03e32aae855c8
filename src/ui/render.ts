import { formatBytes, formatDuration, relativeTime } from "../lib/human.ts";
import { sparkline } from "./charts.ts";
import { h, time } from "./dom.ts";
import { stripSummary, type DrillView, type Job, type SourceView } from "./model.ts";

const STATE_TEXT = { ok: "ok", failed: "failed", canceled: "canceled", never: "no backup yet", unknown: "not loaded yet" } as const;
const DAY_TEXT = { ok: "a backup succeeded", failed: "failed, none succeeded", missed: "missed", pending: "queued or running", none: "nothing due", unknown: "not loaded" } as const;

function strip(view: SourceView): HTMLElement {
  const label = `Last 30 days, oldest first: ${stripSummary(view.strip)}`;
  const box = h("div", { class: "strip", role: "img", "aria-label": label, title: label });
  for (const day of view.strip) {
    const date = new Date(day.start).toLocaleDateString(undefined, { month: "short", day: "numeric" });
    box.append(h("span", { class: `day ${day.state}`, "data-state": day.state, title: `${date}: ${DAY_TEXT[day.state]}` }));
  }
  return box;
}

function when(ms: number | null, now: number, none: string): Node {
  return ms === null ? document.createTextNode(none) : time(ms, relativeTime(ms, now));
}

export function sourceRow(view: SourceView, now: number): HTMLTableRowElement {
  const state = h("td", { class: "state" }, h("span", { class: `badge ${view.state}` }, STATE_TEXT[view.state]));
  if (view.lastError) state.append(" ", h("code", { class: "error-code", title: view.lastError.message }, view.lastError.code));
  if (view.active) state.append(" ", h("span", { class: "badge active" }, view.active.status));
  const points = (pick: (p: SourceView["history"][number]) => number) => view.history.map((p) => ({ at: p.at, value: pick(p) }));
  return h(
    "tr",
    { "data-source-id": view.source.id, "data-state": view.state },
    h("th", { scope: "row" }, view.source.name, h("span", { class: "engine" }, view.source.engine)),
    state,
    h("td", {}, when(view.lastSuccess?.finishedAt ? Date.parse(view.lastSuccess.finishedAt) : null, now, view.lastSuccessKnown ? "never" : "not loaded yet")),
    h("td", {}, when(view.nextRunAt, now, "not scheduled")),
    h("td", {}, strip(view)),
    h(
      "td",
      {},
      sparkline(
        points((p) => p.sizeBytes),
        "size",
        "Size",
      ),
    ),
    h(
      "td",
      {},
      sparkline(
        points((p) => p.seconds),
        "duration",
        "Duration",
      ),
    ),
  );
}

export interface QueueItem {
  kind: "backup" | "restore";
  id: string;
  sourceId: string;
  status: string;
  queuedAt: string;
  startedAt: string | null;
  bytes: number;
}

export function queueRow(item: QueueItem, names: Map<string, string>, now: number): HTMLTableRowElement {
  const since = item.startedAt ?? item.queuedAt;
  return h(
    "tr",
    { "data-job-id": item.id },
    h("th", { scope: "row" }, h("code", {}, item.id)),
    h("td", {}, item.kind),
    h("td", {}, names.get(item.sourceId) ?? item.sourceId),
    h("td", {}, h("span", { class: `badge ${item.status === "running" ? "active" : "queued"}` }, item.status)),
    h("td", {}, time(Date.parse(since), formatDuration(now - Date.parse(since)))),
    h("td", { class: "num" }, item.status === "running" ? formatBytes(item.bytes) : "-"),
  );
}

export function failedRow(job: Job, names: Map<string, string>, now: number): HTMLTableRowElement {
  const at = Date.parse(job.finishedAt ?? job.queuedAt);
  return h(
    "tr",
    { "data-job-id": job.id },
    h("th", { scope: "row" }, h("code", {}, job.id)),
    h("td", {}, names.get(job.dataSourceId) ?? job.dataSourceId),
    h("td", {}, time(at, relativeTime(at, now))),
    h("td", {}, h("code", { class: "error-code" }, job.error?.code ?? "-")),
    h("td", { class: "message" }, job.error?.message ?? ""),
  );
}

const DRILL_BADGE = { passed: "ok", failed: "failed", queued: "queued", running: "active", canceled: "canceled", never: "never" } as const;
const DRILL_TEXT = { passed: "passed", failed: "failed", queued: "queued", running: "running", canceled: "canceled", never: "never run" } as const;
const count = (n: number | null) => (n === null ? "-" : n.toLocaleString("en-US"));

/** A restore drill: its last run's time, outcome, what it compared, how long it took, and why it failed. */
export function drillRow(view: DrillView, names: Map<string, string>, now: number): HTMLTableRowElement {
  const error = h("td", { class: "message" });
  if (view.problem) error.append(h("code", { class: "error-code" }, view.problem.code), " ", view.problem.message);
  return h(
    "tr",
    { "data-plan-id": view.plan.id, "data-result": view.result },
    h("th", { scope: "row" }, view.plan.name, view.plan.enabled ? null : h("span", { class: "engine" }, "disabled")),
    h("td", {}, names.get(view.plan.dataSourceId) ?? view.plan.dataSourceId),
    h("td", {}, when(view.at, now, "never")),
    h("td", { class: "result" }, h("span", { class: `badge ${DRILL_BADGE[view.result]}` }, DRILL_TEXT[view.result])),
    h("td", { class: "num" }, count(view.tables)),
    h("td", { class: "num" }, count(view.rowsCompared)),
    h("td", { class: "num" }, view.durationMs === null ? "-" : view.durationMs < 10_000 ? `${(view.durationMs / 1000).toFixed(1)} s` : formatDuration(view.durationMs)),
    error,
  );
}

/** Replaces a table's body; an empty one shows `empty` in a single cell instead. */
export function fill(tbody: HTMLTableSectionElement, rows: HTMLTableRowElement[], empty: string, columns: number): void {
  tbody.replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: String(columns), class: "empty" }, empty))]));
}
