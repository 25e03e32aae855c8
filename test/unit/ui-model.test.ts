/**
 * The dashboard's arithmetic (src/ui/model.ts), outside a browser: the 30-day strip tells ok,
 * failed, missed (scheduled, nothing ran) and nothing-due days apart with the scheduler's
 * own cron semantics, and a source's state is its last finished backup.
 */
import { expect, test } from "bun:test";
import { coveredFromOf, dayStrip, NOT_LOADED, sourceView, stripSummary, type Attachment, type Job, type Policy } from "../../src/ui/model.ts";

const DAY = 86_400_000;
const localMidnight = (ms: number) => {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
};
// Noon today, local time: far from midnight, so "today" and "n days ago" are unambiguous.
const now = localMidnight(Date.now()) + 12 * 3_600_000;
const dayAgo = (n: number, hour = 3) => new Date(localMidnight(now - n * DAY) + hour * 3_600_000).toISOString();

let seq = 0;
function job(status: Job["status"], queuedAt: string, extra: Partial<Job> = {}): Job {
  seq++;
  return {
    id: `job_${String(seq).padStart(4, "0")}`,
    dataSourceId: "ds_a",
    status,
    trigger: "schedule",
    queuedAt,
    startedAt: queuedAt,
    finishedAt: status === "queued" || status === "running" ? null : new Date(Date.parse(queuedAt) + 60_000).toISOString(),
    sizeBytes: status === "succeeded" ? 1000 + seq : null,
    storedBytes: null,
    progress: { bytesIn: 0, bytesStored: 0 },
    error: status === "failed" ? { code: "AUTH_FAILED", message: "password authentication failed" } : null,
    ...extra,
  };
}

test("a daily schedule: ok, failed and missed days, and nothing before the attachment existed", () => {
  const jobs = [job("succeeded", dayAgo(1)), job("failed", dayAgo(2)), job("failed", dayAgo(3)), job("succeeded", dayAgo(3, 4)), job("canceled", dayAgo(5))];
  // Every day at 01:00 in the viewer's zone (the strip's days are theirs), counted from 8 days ago.
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const schedule = { cron: "0 1 * * *", timezone: local, since: Date.parse(dayAgo(8, 0)) };
  const strip = dayStrip(jobs, [schedule], now);
  expect(strip.length).toBe(30);
  const at = (n: number) => strip[29 - n]!.state;
  expect(at(1)).toBe("ok");
  expect(at(2)).toBe("failed");
  expect(at(3)).toBe("ok"); // a failure and a success the same day: it was backed up
  expect(at(4)).toBe("missed");
  expect(at(5)).toBe("missed"); // only a canceled run: nothing was backed up
  expect(at(0)).toBe("missed"); // today's 01:00 run is hours overdue
  expect(at(20)).toBe("none"); // before the attachment
  expect(strip.slice(0, 20).every((d) => d.state === "none")).toBe(true);
  expect(stripSummary(strip)).toBe(`2 ok, 1 failed, ${strip.filter((d) => d.state === "missed").length} missed`);
});

test("a weekly schedule only misses the days it fires on", () => {
  const schedule = { cron: "30 12 * * 5", timezone: "UTC", since: now - 40 * DAY };
  const strip = dayStrip([], [schedule], now);
  // The oracle, without cron: every Friday 12:30 UTC of the window, put in its local day.
  const fridays: number[] = [];
  for (let t = Date.UTC(2000, 0, 7, 12, 30); t < now - 5 * 60_000; t += 7 * DAY) if (t >= now - 40 * DAY) fridays.push(t);
  const expected = strip.map((d) => (fridays.some((t) => t >= d.start && t < d.start + 2 * DAY && localMidnight(t) === d.start) ? "missed" : "none"));
  expect(strip.map((d) => d.state)).toEqual(expected);
  expect(expected.filter((s) => s === "missed").length).toBeGreaterThanOrEqual(4);
});

test("a running job marks its day pending, a run due minutes ago is not missed yet", () => {
  const strip = dayStrip([job("running", new Date(now - 60_000).toISOString())], [{ cron: "* * * * *", timezone: "UTC", since: now - DAY / 2 }], now);
  expect(strip[29]!.state).toBe("pending");
  const fresh = dayStrip([], [{ cron: "* * * * *", timezone: "UTC", since: now - 60_000 }], now);
  expect(fresh[29]!.state).toBe("none");
});

test("the source's state is its last finished backup; charts take its successes oldest first", () => {
  const attachments: Attachment[] = [
    { id: "att_1", dataSourceId: "ds_a", policyId: "pol_1", enabled: true, nextRunAt: new Date(now + 3_600_000).toISOString(), createdAt: dayAgo(10) },
    { id: "att_2", dataSourceId: "ds_a", policyId: "pol_1", enabled: false, nextRunAt: null, createdAt: dayAgo(10) },
  ];
  const policies = new Map<string, Policy>([["pol_1", { id: "pol_1", name: "nightly", scheduleCron: "0 3 * * *", timezone: "UTC" }]]);
  const ok = [job("succeeded", dayAgo(3)), job("succeeded", dayAgo(2)), job("succeeded", dayAgo(1))];
  const failing = sourceView({ id: "ds_a", name: "a", engine: "postgres" }, [...ok, job("failed", dayAgo(0, 1))], attachments, policies, now);
  expect(failing.state).toBe("failed");
  expect(failing.lastError?.code).toBe("AUTH_FAILED");
  expect(failing.lastSuccess?.id).toBe(ok[2]!.id);
  expect(failing.nextRunAt).toBe(now + 3_600_000);
  expect(failing.history.map((p) => p.sizeBytes)).toEqual(ok.map((j) => j.sizeBytes!));
  expect(failing.history.every((p) => p.seconds === 60)).toBe(true);

  const healthy = sourceView({ id: "ds_a", name: "a", engine: "postgres" }, ok, attachments, policies, now);
  expect(healthy.state).toBe("ok");
  expect(healthy.lastError).toBeNull();

  const never = sourceView({ id: "ds_b", name: "b", engine: "sqlite" }, ok, [], policies, now);
  expect(never).toMatchObject({ state: "never", lastSuccess: null, nextRunAt: null, history: [] });
  // A success older than the window still counts as the last success.
  const old = job("succeeded", new Date(now - 90 * DAY).toISOString(), { dataSourceId: "ds_b" });
  expect(sourceView({ id: "ds_b", name: "b", engine: "sqlite" }, [], [], policies, now, old)).toMatchObject({ state: "ok", lastSuccess: old });
});

test("jobs cut short (too many to load): the days they do not cover say unknown, never missed", () => {
  const local = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const schedule = { cron: "0 1 * * *", timezone: local, since: Date.parse(dayAgo(25, 0)) };
  // The newest jobs only (the list is newest first), down to one queued 5 days ago at 03:00.
  const loaded = [job("succeeded", dayAgo(1)), job("failed", dayAgo(3)), job("failed", dayAgo(5, 2)), job("succeeded", dayAgo(5))];
  const coveredFrom = coveredFromOf({ items: loaded, complete: false });
  expect(coveredFrom).toBe(Date.parse(dayAgo(5)));
  expect(coveredFromOf({ items: loaded, complete: true })).toBeNull();

  const strip = dayStrip(loaded, [schedule], now, 30, coveredFrom);
  const at = (n: number) => strip[29 - n]!.state;
  expect(at(1)).toBe("ok");
  expect(at(2)).toBe("missed"); // inside what was loaded: a real miss
  expect(at(3)).toBe("failed");
  expect(at(5)).toBe("ok"); // partly loaded, but a success was seen
  // Before the loaded jobs: not "missed" (the runs may be among the jobs not loaded), not "none" either.
  for (let n = 6; n < 30; n++) expect({ n, state: at(n) }).toEqual({ n, state: "unknown" });
  expect(stripSummary(strip)).toBe(`2 ok, 1 failed, ${strip.filter((d) => d.state === "missed").length} missed, 24 not loaded`);
  // A partly loaded day without a success seen is unknown too (its success may be among the others).
  const cutMidDay = dayStrip([job("failed", dayAgo(4, 12))], [schedule], now, 30, Date.parse(dayAgo(4, 12)));
  expect(cutMidDay[29 - 4]!.state).toBe("unknown");

  // The same through sourceView, and a last success not looked up yet is "not loaded", not "never".
  const attachments: Attachment[] = [{ id: "att_1", dataSourceId: "ds_a", policyId: "pol_1", enabled: true, nextRunAt: null, createdAt: dayAgo(25) }];
  const policies = new Map<string, Policy>([["pol_1", { id: "pol_1", name: "nightly", scheduleCron: "0 1 * * *", timezone: local }]]);
  const view = sourceView({ id: "ds_a", name: "a", engine: "postgres" }, loaded, attachments, policies, now, null, { coveredFrom });
  expect(view.strip.map((d) => d.state)).toEqual(strip.map((d) => d.state));
  const unseen = sourceView({ id: "ds_z", name: "z", engine: "postgres" }, loaded, [], policies, now, NOT_LOADED, { coveredFrom });
  expect(unseen).toMatchObject({ state: "unknown", lastSuccess: null, lastSuccessKnown: false });
  expect(sourceView({ id: "ds_z", name: "z", engine: "postgres" }, loaded, [], policies, now, null)).toMatchObject({ state: "never", lastSuccessKnown: true });
});
