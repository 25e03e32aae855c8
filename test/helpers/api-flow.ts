import type { Harness } from "./harness.ts";
import { pinnedToHarness } from "./store-matrix.ts";

/** Small steps of the public API that backup/restore tests repeat. Each checks its status. */
export async function must(h: Harness, token: string, method: string, path: string, body?: unknown, status = 200): Promise<any> {
  const res = await h.call(method, path, { token, body });
  if (res.status !== status) throw new Error(`${method} ${path} → ${res.status} (wanted ${status}): ${res.text}`);
  return res.body;
}

export async function createSource(h: Harness, token: string, body: Record<string, unknown>, credentials?: { username: string; password: string }) {
  const pin = body.engine === "sqlite" ? pinnedToHarness() : {};
  const source = await must(h, token, "POST", "/data-sources", { name: `src-${crypto.randomUUID().slice(0, 8)}`, ...pin, ...body }, 201);
  if (credentials) await must(h, token, "PUT", `/data-sources/${source.id}/credentials`, credentials, 204);
  return source;
}

export async function createPolicy(h: Harness, token: string, destinationId: string, extra: Record<string, unknown> = {}) {
  return must(
    h,
    token,
    "POST",
    "/backup-policies",
    {
      name: `pol-${crypto.randomUUID().slice(0, 8)}`,
      scheduleCron: "0 3 1 1 *",
      timezone: "UTC",
      destinationId,
      retention: { keepLast: 7 },
      compression: { algorithm: "zstd", level: 3 },
      encryption: { enabled: true, recipients: [] },
      timeoutSeconds: 600,
      retries: 0,
      ...extra,
    },
    201,
  );
}

export async function attach(h: Harness, token: string, dataSourceId: string, policyId: string) {
  return must(h, token, "POST", "/attachments", { dataSourceId, policyId, enabled: true }, 201);
}

export async function managedDestination(h: Harness, token: string) {
  const res = await h.call("POST", "/storage-destinations/managed/ensure", { token });
  if (res.status !== 200 && res.status !== 201) throw new Error(`ensure → ${res.status}: ${res.text}`);
  return res.body;
}

const TERMINAL = ["succeeded", "failed", "canceled"];

/** Polls a job (or restore) until it reaches one of `statuses` (default: any terminal one). */
export async function waitForStatus(h: Harness, token: string, path: string, statuses = TERMINAL, ms = 60_000): Promise<any> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await h.call("GET", path, { token });
    if (statuses.includes(res.body?.status)) return res.body;
    if (Date.now() > deadline) throw new Error(`${path} still ${res.body?.status} after ${ms} ms: ${res.text}`);
    await Bun.sleep(50);
  }
}

/** Runs a backup of `dataSourceId` now and waits for it to finish. */
export async function backupNow(h: Harness, token: string, dataSourceId: string, policyId?: string) {
  const job = await must(h, token, "POST", "/backup-jobs/run-now", { dataSourceId, policyId }, 202);
  return waitForStatus(h, token, `/backup-jobs/${job.id}`);
}
