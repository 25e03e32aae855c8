/**
 * Load: 64 concurrent clients mix reads (lists walked by cursor, gets), writes (data sources,
 * policies, patches, attachments) and run-nows against the real daemon while it runs backups
 * of small SQLite files. Proven: zero 5xx and zero lost writes (every acknowledged create and
 * patch reads back as acknowledged, and every created resource is found by walking the lists).
 * Latency (p50/p99 per kind of request) is printed, not asserted: speed is benchmarked, not tested.
 * SNAPDB_LOAD_SECONDS (default 20) sets the duration; the figure is 60.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { DaemonApi, seededRandom, type ApiAnswer } from "../helpers/daemon-api.ts";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";
import { tempDir } from "../helpers/tmp.ts";
import { smallSqlite } from "../helpers/sqlite-file.ts";
import { readStore } from "./invariants.ts";

const SECONDS = Number(process.env.SNAPDB_LOAD_SECONDS ?? 20);
const CLIENTS = 64;
const ORG = "org_load";
const scratch = tempDir("snapdb-load");
let daemon: Daemon;
let token: string;
let managedId: string;
const shared: { sourceId: string; policyId: string }[] = [];

beforeAll(async () => {
  // One org here: let it use both of the runner's slots, as the load is about the API under running backups.
  daemon = await startDaemon({ env: { SNAPDB_RUNNER_RETRY_BASE_SECONDS: "1", SNAPDB_LOG_LEVEL: "warn", SNAPDB_ALLOWED_SQLITE_ROOTS: scratch.path, SNAPDB_RUNNER_MAX_CONCURRENT_PER_ORG: "2" } });
  token = await daemon.token(ORG);
  const api = new DaemonApi(daemon.baseUrl, token);
  managedId = (await api.managedDestination()).id;
  for (let i = 0; i < 8; i++) {
    const source = await api.createSource({ engine: "sqlite", path: smallSqlite(scratch.path) });
    const policy = await api.createPolicy(managedId, { compression: { algorithm: "zstd", level: 1 }, retention: { keepLast: 3 } });
    await api.attach(source.id, policy.id);
    shared.push({ sourceId: source.id, policyId: policy.id });
  }
}, 60_000);

afterAll(async () => {
  await daemon?.stop("SIGTERM", 10_000);
  scratch.cleanup();
}, 30_000);

type Kind = "list" | "get" | "create-source" | "create-policy" | "patch" | "attach" | "run-now";
interface Written {
  path: string;
  expect: Record<string, unknown>;
}

const LISTS = ["/data-sources", "/backup-policies", "/attachments", "/backup-jobs", "/audit-log", "/storage-destinations"];
const failures: string[] = [];
const latencies = new Map<Kind, number[]>();
const statuses = new Map<number, number>();
const written = new Map<string, Written>();
const fileToOpen = smallSqlite(scratch.path);

function note(kind: Kind, res: ApiAnswer, ok: number[]): ApiAnswer {
  latencies.set(kind, [...(latencies.get(kind) ?? []), res.ms]);
  statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  if (!ok.includes(res.status) && failures.length < 50) failures.push(`${kind} → ${res.status}: ${res.text.slice(0, 300)}`);
  return res;
}

async function client(n: number, deadline: number): Promise<void> {
  const api = new DaemonApi(daemon.baseUrl, token);
  const random = seededRandom(1000 + n);
  const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;
  const mine = { sources: [] as string[], policies: [] as string[] };
  for (let i = 0; i < 100_000 && Date.now() < deadline; i++) {
    const r = random();
    if (r < 0.3) {
      // A list, walked a few pages by cursor.
      let path = `${pick(LISTS)}?limit=${1 + Math.floor(random() * 20)}`;
      for (let page = 0; page < 3; page++) {
        const res = note("list", await api.call("GET", path), [200]);
        const next = res.body?.cursors?.next;
        if (!next) break;
        path = `${path.split("?")[0]}?limit=5&cursor=${encodeURIComponent(next)}`;
      }
    } else if (r < 0.5) {
      const known = [...written.keys()];
      const path = known.length ? pick(known) : `/data-sources/${pick(shared).sourceId}`;
      note("get", await api.call("GET", path), [200]);
    } else if (r < 0.62) {
      const body = { name: `load-${n}-${i}-${crypto.randomUUID().slice(0, 6)}`, engine: "sqlite", path: fileToOpen, labels: { client: String(n), i: String(i) } };
      const res = note("create-source", await api.call("POST", "/data-sources", body), [201]);
      if (res.status === 201) {
        written.set(`/data-sources/${res.body.id}`, { path: `/data-sources/${res.body.id}`, expect: { name: body.name, path: body.path, labels: body.labels } });
        mine.sources.push(res.body.id);
      }
    } else if (r < 0.72) {
      const body = {
        name: `load-pol-${n}-${i}-${crypto.randomUUID().slice(0, 6)}`,
        scheduleCron: "0 3 1 1 *",
        timezone: "UTC",
        destinationId: managedId,
        retention: { keepLast: 1 + (i % 9) },
        compression: { algorithm: "zstd", level: 3 },
        encryption: { enabled: false, recipients: [] },
        timeoutSeconds: 600,
        retries: 0,
      };
      const res = note("create-policy", await api.call("POST", "/backup-policies", body), [201]);
      if (res.status === 201) {
        written.set(`/backup-policies/${res.body.id}`, { path: `/backup-policies/${res.body.id}`, expect: { name: body.name, retention: res.body.retention, scheduleCron: body.scheduleCron } });
        mine.policies.push(res.body.id);
      }
    } else if (r < 0.82) {
      // Each client patches only what it created, so the last acknowledged value is known.
      if (!mine.sources.length) continue;
      const id = pick(mine.sources);
      const labels = { client: String(n), patched: String(i) };
      const res = note("patch", await api.call("PATCH", `/data-sources/${id}`, { labels }), [200]);
      if (res.status === 200) written.get(`/data-sources/${id}`)!.expect.labels = labels;
    } else if (r < 0.87) {
      if (!mine.sources.length || !mine.policies.length) continue;
      const body = { dataSourceId: mine.sources.pop()!, policyId: pick(mine.policies), enabled: random() < 0.5 };
      const res = note("attach", await api.call("POST", "/attachments", body), [201]);
      if (res.status === 201) written.set(`/attachments/${res.body.id}`, { path: `/attachments/${res.body.id}`, expect: body });
    } else {
      const s = pick(shared);
      // 409 while that source already has a job queued or running.
      note("run-now", await api.call("POST", "/backup-jobs/run-now", { dataSourceId: s.sourceId, policyId: s.policyId }), [202, 409]);
    }
  }
}

const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
};

test(
  `${CLIENTS} clients for ${SECONDS} s: no 5xx, no lost write`,
  async () => {
    const deadline = Date.now() + SECONDS * 1000;
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n, deadline)));

    const all = [...latencies.values()].flat();
    const lines = [...latencies.entries()].map(([k, xs]) => `  ${k.padEnd(14)} n=${String(xs.length).padStart(6)}  p50=${pct(xs, 50).toFixed(1)} ms  p99=${pct(xs, 99).toFixed(1)} ms`);
    console.log(
      `load: ${CLIENTS} clients, ${SECONDS} s, ${all.length} requests (${(all.length / SECONDS).toFixed(0)}/s), p50=${pct(all, 50).toFixed(1)} ms p99=${pct(all, 99).toFixed(1)} ms\n` +
        `${lines.join("\n")}\n  statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
    expect(failures).toEqual([]);

    // Every acknowledged write reads back as acknowledged.
    const api = new DaemonApi(daemon.baseUrl, token);
    const lost: string[] = [];
    for (const w of written.values()) {
      const res = await api.call("GET", w.path);
      if (res.status !== 200) lost.push(`${w.path} → ${res.status}`);
      else for (const [k, v] of Object.entries(w.expect)) if (JSON.stringify(res.body[k]) !== JSON.stringify(v)) lost.push(`${w.path}.${k}: ${JSON.stringify(res.body[k])} ≠ ${JSON.stringify(v)}`);
    }
    expect(lost).toEqual([]);
    // …and is found by walking each list to its end by cursor (keyset pages stay stable).
    for (const list of ["/data-sources", "/backup-policies", "/attachments"]) {
      const seen = new Set<string>();
      let path = `${list}?limit=200`;
      for (let page = 0; page < 1000; page++) {
        const body = await api.must("GET", path);
        for (const item of body.items) seen.add(`${list}/${item.id}`);
        if (!body.cursors.next) break;
        path = `${list}?limit=200&cursor=${encodeURIComponent(body.cursors.next)}`;
      }
      const missing = [...written.keys()].filter((k) => k.startsWith(`${list}/`) && !seen.has(k));
      expect(missing).toEqual([]);
    }

    // The backups that ran meanwhile all finish, and succeed.
    const until = Date.now() + 60_000;
    let jobs: any[] = [];
    while (Date.now() < until) {
      jobs = (await api.must("GET", "/backup-jobs?limit=200")).items;
      if (jobs.every((j) => ["succeeded", "failed", "canceled"].includes(j.status))) break;
      await Bun.sleep(200);
    }
    console.log(`load: ${jobs.length} backup jobs (newest 200) ran during the load`);
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.filter((j) => j.status !== "succeeded").map((j) => `${j.id} ${j.status} ${JSON.stringify(j.error)}`)).toEqual([]);
    const store = readStore(join(daemon.dataDir, "snapdb.db"));
    expect(store.integrity).toBe("ok");
    expect(store.foreignKeyProblems).toEqual([]);
  },
  (SECONDS + 120) * 1000,
);
