import { contractFor, type ApiContract } from "./status-contract.ts";
import { pinnedToHarness } from "./store-matrix.ts";

/**
 * The api-flow steps (createSource, createPolicy, attach, …) over real HTTP against a daemon
 * started with test/helpers/daemon.ts, for tests that kill, restart or load a real process.
 */
export interface ApiAnswer {
  status: number;
  body: any;
  text: string;
  ms: number;
}

export class DaemonApi {
  /** Every answer is held to the served document (test/helpers/status-contract.ts). */
  private contract: Promise<ApiContract> | null = null;

  constructor(
    public baseUrl: string,
    public token: string,
  ) {}

  private contractOf(): Promise<ApiContract> {
    // A daemon that is down (killed by the test) is asked again on the next call.
    this.contract ??= fetch(`${this.baseUrl}/swagger/json`)
      .then(async (r) => contractFor(await r.json()))
      .catch((err) => {
        this.contract = null;
        throw err;
      });
    return this.contract;
  }

  async call(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<ApiAnswer> {
    const started = performance.now();
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    (await this.contractOf()).check({ method, path, status: res.status, headers: res.headers, text });
    let parsed: any = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {}
    return { status: res.status, body: parsed, text, ms: performance.now() - started };
  }

  async must(method: string, path: string, body?: unknown, status = 200): Promise<any> {
    const res = await this.call(method, path, body);
    if (res.status !== status) throw new Error(`${method} ${path} → ${res.status} (wanted ${status}): ${res.text}`);
    return res.body;
  }

  async createSource(body: Record<string, unknown>, credentials?: { username: string; password: string }) {
    // On the PostgreSQL leg a SQLite source names its node (the daemon is labelled like a harness).
    const pin = body.engine === "sqlite" && !("runOn" in body) ? pinnedToHarness() : {};
    const source = await this.must("POST", "/data-sources", { name: `src-${crypto.randomUUID().slice(0, 8)}`, ...pin, ...body }, 201);
    if (credentials) await this.must("PUT", `/data-sources/${source.id}/credentials`, credentials, 204);
    return source;
  }

  async createPolicy(destinationId: string, extra: Record<string, unknown> = {}) {
    return this.must(
      "POST",
      "/backup-policies",
      {
        name: `pol-${crypto.randomUUID().slice(0, 8)}`,
        scheduleCron: "0 3 1 1 *",
        timezone: "UTC",
        destinationId,
        retention: { keepLast: 50 },
        compression: { algorithm: "zstd", level: 3 },
        encryption: { enabled: true, recipients: [] },
        timeoutSeconds: 600,
        retries: 0,
        ...extra,
      },
      201,
    );
  }

  async attach(dataSourceId: string, policyId: string) {
    return this.must("POST", "/attachments", { dataSourceId, policyId, enabled: true }, 201);
  }

  async managedDestination() {
    const res = await this.call("POST", "/storage-destinations/managed/ensure");
    if (res.status !== 200 && res.status !== 201) throw new Error(`ensure → ${res.status}: ${res.text}`);
    return res.body;
  }

  async s3Destination(s3: { endpoint: string; region: string; accessKeyId: string; secretAccessKey: string }, bucket: string, prefix = "") {
    return this.must(
      "POST",
      "/storage-destinations",
      {
        kind: "s3",
        name: `s3-${crypto.randomUUID().slice(0, 8)}`,
        endpoint: s3.endpoint,
        region: s3.region,
        bucket,
        prefix,
        forcePathStyle: true,
        auth: { type: "accessKey", accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      },
      201,
    );
  }

  async runNow(dataSourceId: string, policyId?: string) {
    return this.must("POST", "/backup-jobs/run-now", { dataSourceId, policyId }, 202);
  }

  /** Polls `path` until its status is one of `statuses` (default: terminal). */
  async waitForStatus(path: string, statuses = ["succeeded", "failed", "canceled"], ms = 60_000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const res = await this.call("GET", path);
      if (statuses.includes(res.body?.status)) return res.body;
      if (Date.now() > deadline) throw new Error(`${path} still ${res.body?.status} after ${ms} ms: ${res.text}`);
      await Bun.sleep(50);
    }
  }

  async backupNow(dataSourceId: string, policyId?: string, ms = 60_000) {
    const job = await this.runNow(dataSourceId, policyId);
    return this.waitForStatus(`/backup-jobs/${job.id}`, undefined, ms);
  }
}

/** Seeded PRNG (mulberry32): the same seed gives the same kill points. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
