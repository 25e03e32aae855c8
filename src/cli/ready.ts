import { CONFIG_HELP, CONFIG_OPTIONS, UsageError, type Command } from "./command.ts";
import { loadFromArgs } from "./runtime.ts";

/** The URL a local client reaches the daemon at: a wildcard listen address means loopback. */
export function localBaseUrl(listen: string): string {
  const i = listen.lastIndexOf(":");
  let host = listen.slice(0, i).replace(/^\[(.*)\]$/, "$1");
  const port = listen.slice(i + 1);
  if (host === "0.0.0.0" || host === "") host = "127.0.0.1";
  if (host === "::") host = "::1";
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export type ReadyProbe = { state: "ready" } | { state: "not-ready"; status: number; message: string } | { state: "unreachable"; message: string };

/** One GET /readyz with a timeout; never throws. */
export async function probeReady(baseUrl: string, timeoutMs = 2000): Promise<ReadyProbe> {
  try {
    const res = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(timeoutMs), redirect: "manual" });
    const text = await res.text();
    let body: { status?: unknown; message?: unknown } = {};
    try {
      body = JSON.parse(text);
    } catch {}
    if (res.status === 200 && body.status === "ready") return { state: "ready" };
    const message = typeof body.message === "string" ? body.message : text.slice(0, 200);
    return { state: "not-ready", status: res.status, message };
  } catch (err) {
    return { state: "unreachable", message: (err as Error).message };
  }
}

export const readyCommand: Command = {
  name: "ready",
  summary: "wait until the daemon answers /readyz (systemd ExecStartPost)",
  usage: `snapdb ready [--timeout 60] [flags]

Polls GET /readyz on the configured listen address (a wildcard address is reached on
loopback) until the daemon is ready. Exits 0 when ready, 1 on timeout. The systemd unit
runs it as ExecStartPost, so 'systemctl start snapdb' returns only once the API answers.

  --timeout SECONDS   give up after this long (default 60)

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, timeout: { type: "string" } },
  async run(values) {
    const timeout = Number(typeof values.timeout === "string" ? values.timeout : "60");
    if (!Number.isFinite(timeout) || timeout <= 0) throw new UsageError("--timeout must be a positive number of seconds");
    const base = localBaseUrl(loadFromArgs(values).listen);
    const deadline = Date.now() + timeout * 1000;
    let last: ReadyProbe = { state: "unreachable", message: "not tried" };
    while (Date.now() < deadline) {
      last = await probeReady(base, Math.min(2000, Math.max(100, deadline - Date.now())));
      if (last.state === "ready") {
        process.stdout.write(`snapdb is ready at ${base}\n`);
        return 0;
      }
      await Bun.sleep(Math.min(250, Math.max(0, deadline - Date.now())));
    }
    const why = last.state === "not-ready" ? `HTTP ${last.status}: ${last.message}` : last.message;
    process.stderr.write(`snapdb ready: ${base}/readyz did not answer ready within ${timeout}s (last: ${why})\n`);
    return 1;
  },
};
