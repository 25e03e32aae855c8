import { createServer } from "node:net";

/** A free TCP port on 127.0.0.1 (the kernel picks it; a tiny race is accepted in tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `ready` until it is true or `ms` pass; the error names what never came up. */
export async function waitFor(what: string, ready: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await ready()) return;
    await Bun.sleep(50);
  }
  throw new Error(`${what} did not become ready within ${ms} ms`);
}

/** Stops registered on process exit too, so a crashed test file does not leave servers running. */
const pending = new Set<() => void>();
let hooked = false;
export function onExit(stop: () => void): () => void {
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const s of pending) s();
    });
  }
  pending.add(stop);
  return () => pending.delete(stop);
}
