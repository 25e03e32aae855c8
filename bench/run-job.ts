import { type apiOf, cpuOf, resetPeak, rssSampler, type Daemon } from "./lib.ts";

/** What one snapdb backup cost, measured from outside the daemon. */
export interface JobRun {
  /** Wall seconds from `POST /backup-jobs/run-now` to the job's finishedAt. */
  seconds: number;
  /** The job's own startedAt → finishedAt. */
  jobSeconds: number;
  sizeBytes: number;
  storedBytes: number;
  /** The daemon's peak RSS during the job (VmHWM reset before it, VmRSS sampled every 100 ms). */
  peakMiB: number;
  /** CPU seconds: the daemon itself, and its children (pg_dump, zstd, age). */
  cpu: { self: number; children: number };
  /** The job as the API answered at its end (a whole server's `parts`, …). */
  row: any;
}

/**
 * One backup through the API, as a user starts it. Wall time runs from the request to the
 * job's finishedAt (the daemon's clock is this machine's): polling every 50 ms to see the
 * end cost the daemon ~0.3 s of CPU per backup, a load the baseline does not carry, and
 * coarser polling would add its delay.
 */
export async function runJob(d: Daemon, api: ReturnType<typeof apiOf>, dataSourceId: string, policyId: string): Promise<JobRun> {
  resetPeak(d.pid);
  const cpu0 = cpuOf(d.pid);
  const sampler = rssSampler(d.pid, 100);
  const t0 = Date.now();
  const job = await api("POST", "/backup-jobs/run-now", { dataSourceId, policyId });
  let row: any = job;
  const deadline = Date.now() + 3_600_000;
  while (!["succeeded", "failed", "canceled"].includes(row.status) && Date.now() < deadline) {
    await Bun.sleep(250);
    row = await api("GET", `/backup-jobs/${job.id}`);
  }
  const seconds = (Date.parse(row.finishedAt) - t0) / 1000;
  const mem = sampler.stop();
  const cpu1 = cpuOf(d.pid);
  if (row.status !== "succeeded") throw new Error(`job ${job.id} ${row.status}: ${JSON.stringify(row.error)}`);
  return {
    seconds,
    jobSeconds: (Date.parse(row.finishedAt) - Date.parse(row.startedAt)) / 1000,
    sizeBytes: row.sizeBytes,
    storedBytes: row.storedBytes,
    peakMiB: Math.max(mem.hwm, mem.maxRss),
    cpu: { self: cpu1.self - cpu0.self, children: cpu1.children - cpu0.children },
    row,
  };
}
