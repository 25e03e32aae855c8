import { all, ApiFailure, collect, get, hasToken, redeemCode, setToken, Unauthenticated } from "./api.ts";
import { byId } from "./dom.ts";
import { coveredFromOf, drillView, NOT_LOADED, sourceView, type Attachment, type Job, type Policy, type RestorePlan, type Source } from "./model.ts";
import { drillRow, failedRow, fill, queueRow, sourceRow, type QueueItem } from "./render.ts";
import { pastedTokenProblem } from "./token.ts";

const DAY_MS = 86_400_000;
const REFRESH_MS = 30_000;
/** Pages of 200 backup jobs read for the 30-day window: past that, the oldest days say "not loaded". */
const JOB_PAGES = 25;
/** Data sources whose last success (older than the jobs loaded) is looked up per refresh. */
const OLDER_PER_REFRESH = 50;
/** Such a last success is asked again after this long (a job may have been deleted meanwhile). */
const OLDER_TTL_MS = 10 * 60_000;
let timer: number | undefined;
/** Kept across refreshes: a source's last success older than the loaded jobs changes rarely. */
const olderSuccess = new Map<string, { job: Job | null; at: number }>();

const status = (text: string) => {
  byId("status").textContent = text;
};

function showLogin(message?: string): void {
  setToken(null);
  window.clearTimeout(timer);
  byId("dashboard").hidden = true;
  byId("refresh").hidden = true;
  byId("login").hidden = false;
  const error = byId("login-error");
  error.hidden = !message;
  error.textContent = message ?? "";
  status("Not signed in.");
  byId<HTMLInputElement>("token").focus();
}

async function load(): Promise<void> {
  const now = Date.now();
  const from = new Date(now - 30 * DAY_MS).toISOString();
  const [sources, attachments, policies, recentPages, queuedPages, runningPages, restoresQueuedPages, restoresRunningPages, drills] = await Promise.all([
    all<Source>("data-sources"),
    all<Attachment>("attachments"),
    all<Policy>("backup-policies"),
    collect<Job>("backup-jobs", { from }, JOB_PAGES),
    collect<Job>("backup-jobs", { status: "queued" }, 2),
    collect<Job>("backup-jobs", { status: "running" }, 2),
    collect<any>("restores", { status: "queued" }, 2),
    collect<any>("restores", { status: "running" }, 2),
    all<RestorePlan>("restore-plans", { mode: "drill" }),
  ]);
  const recent = recentPages.items;
  const [queued, running, restoresQueued, restoresRunning] = [queuedPages, runningPages, restoresQueuedPages, restoresRunningPages].map((p) => p.items) as [Job[], Job[], any[], any[]];
  const coveredFrom = coveredFromOf(recentPages);
  const policyById = new Map(policies.map((p) => [p.id, p]));
  const names = new Map(sources.map((s) => [s.id, s.name]));
  // A source with no success among the loaded jobs: ask for its last one (a few per refresh, in
  // parallel; the answers are kept). The others say "not loaded yet" until their turn.
  const recentSuccess = new Set(recent.filter((j) => j.status === "succeeded").map((j) => j.dataSourceId));
  const withoutRecent = sources.filter((s) => !recentSuccess.has(s.id));
  await Promise.all(
    withoutRecent
      .filter((s) => (olderSuccess.get(s.id)?.at ?? 0) <= now - OLDER_TTL_MS)
      .slice(0, OLDER_PER_REFRESH)
      .map(async (s) => {
        const page = await get<{ items: Job[] }>("backup-jobs", { dataSourceId: s.id, status: "succeeded", limit: 1 });
        olderSuccess.set(s.id, { job: page.items[0] ?? null, at: now });
      }),
  );
  const notLoaded = withoutRecent.filter((s) => !olderSuccess.has(s.id)).length;

  const views = sources
    .map((s) => sourceView(s, recent, attachments, policyById, now, olderSuccess.has(s.id) ? olderSuccess.get(s.id)!.job : NOT_LOADED, { coveredFrom }))
    .sort((a, b) => a.source.name.localeCompare(b.source.name));
  fill(
    byId<HTMLTableSectionElement>("sources-body"),
    views.map((v) => sourceRow(v, now)),
    "No data sources yet.",
    7,
  );

  const queue: QueueItem[] = [
    ...[...running, ...queued].map((j) => ({ kind: "backup" as const, id: j.id, sourceId: j.dataSourceId, status: j.status, queuedAt: j.queuedAt, startedAt: j.startedAt, bytes: j.progress.bytesIn })),
    ...[...restoresRunning, ...restoresQueued].map((r) => ({
      kind: "restore" as const,
      id: r.id,
      sourceId: r.targetDataSourceId,
      status: r.status,
      queuedAt: r.queuedAt,
      startedAt: r.startedAt,
      bytes: r.progress?.bytesRead ?? 0,
    })),
  ];
  fill(
    byId<HTMLTableSectionElement>("queue-body"),
    queue.map((q) => queueRow(q, names, now)),
    "Nothing is queued or running.",
    6,
  );

  const failed = recent.filter((j) => j.status === "failed").slice(0, 50);
  fill(
    byId<HTMLTableSectionElement>("failed-body"),
    failed.map((j) => failedRow(j, names, now)),
    "No failed backups in the last 30 days.",
    5,
  );

  const drillViews = drills.map(drillView).sort((a, b) => a.plan.name.localeCompare(b.plan.name));
  fill(
    byId<HTMLTableSectionElement>("drills-body"),
    drillViews.map((d) => drillRow(d, names, now)),
    "No restore drills yet (a restore plan with mode drill).",
    8,
  );

  // What this refresh could not read, said on the page rather than shown as if it were known.
  const partial: string[] = [];
  if (coveredFrom !== null) {
    partial.push(
      `Only the newest ${recent.length} backup jobs of the last 30 days were loaded (the most the dashboard reads at once): ` +
        `the 30-day strips say "not loaded" for days before ${new Date(coveredFrom).toLocaleString()} instead of ok, failed or missed, and the failed backups are those among them.`,
    );
  }
  if (notLoaded) partial.push(`The last success of ${notLoaded} data source${notLoaded === 1 ? "" : "s"} is not loaded yet (${OLDER_PER_REFRESH} are looked up per refresh).`);
  if (![queuedPages, runningPages, restoresQueuedPages, restoresRunningPages].every((p) => p.complete)) partial.push("The queue shows the first 400 queued and 400 running backups and restores only.");
  const notice = byId("partial");
  notice.hidden = partial.length === 0;
  notice.textContent = partial.length ? `Partial data. ${partial.join(" ")}` : "";
  byId("legend-unknown").hidden = coveredFrom === null;

  const counts = { ok: 0, failed: 0 };
  for (const v of views) if (v.state === "ok" || v.state === "failed") counts[v.state]++;
  status(
    `${views.length} data source${views.length === 1 ? "" : "s"}: ${counts.ok} ok, ${counts.failed} failing. Updated ${new Date(now).toLocaleTimeString()}.${partial.length ? " Partial data: see the note above the table." : ""}`,
  );
}

async function refresh(): Promise<void> {
  window.clearTimeout(timer);
  if (!hasToken()) return;
  try {
    await load();
  } catch (err) {
    if (err instanceof Unauthenticated) return showLogin("Your session has ended (the token expired or was refused). Run snapdb ui-link again.");
    status(err instanceof ApiFailure ? `Could not load: ${err.message}` : `Could not reach the daemon: ${(err as Error).message}`);
  }
  timer = window.setTimeout(() => void refresh(), REFRESH_MS);
}

async function start(token: string): Promise<void> {
  setToken(token);
  byId("login").hidden = true;
  byId("dashboard").hidden = false;
  byId("refresh").hidden = false;
  status("Loading…");
  await refresh();
}

async function boot(): Promise<void> {
  byId("refresh").addEventListener("click", () => void refresh());
  byId<HTMLFormElement>("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId<HTMLInputElement>("token");
    const token = input.value.trim();
    input.value = "";
    if (!token) return;
    const problem = pastedTokenProblem(token);
    if (problem) return showLogin(problem);
    void start(token);
  });
  const code = new URLSearchParams(location.hash.slice(1)).get("code");
  // The code leaves the address bar (and the history entry) before it is used, whatever happens next.
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  if (!code) return showLogin();
  status("Signing in…");
  try {
    const session = await redeemCode(code);
    await start(session.token);
  } catch (err) {
    showLogin(err instanceof Unauthenticated ? "This login link is invalid, expired or was already used. Run snapdb ui-link again for a new one." : `Could not sign in: ${(err as Error).message}`);
  }
}

void boot();
