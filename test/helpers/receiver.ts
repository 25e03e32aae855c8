/**
 * A real HTTP receiver on loopback (Bun.serve) for notification tests: it records every
 * request (headers and raw body) and answers with whatever `respond` says, so a test can
 * play a flaky (500 then 200), throttling (429 + Retry-After), slow or gone receiver.
 */
export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** How the next request is answered; the default is 200. */
  respond: (req: Received, n: number) => Response | Promise<Response>;
  /** Resolves once `count` requests have arrived (or rejects after `ms`). */
  waitFor(count: number, ms?: number): Promise<Received[]>;
  stop(): void;
}

export function startReceiver(port = 0): Receiver {
  const received: Received[] = [];
  const receiver: Receiver = {
    url: "",
    port: 0,
    received,
    respond: () => new Response("ok"),
    async waitFor(count, ms = 20_000) {
      const until = Date.now() + ms;
      while (received.length < count) {
        if (Date.now() > until) throw new Error(`receiver got ${received.length} of ${count} requests within ${ms} ms`);
        await Bun.sleep(20);
      }
      return received.slice(0, count);
    },
    stop: () => server.stop(true),
  };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    idleTimeout: 120,
    async fetch(request) {
      const req: Received = { path: new URL(request.url).pathname, headers: Object.fromEntries(request.headers), body: await request.text(), at: Date.now() };
      received.push(req);
      return receiver.respond(req, received.length);
    },
  });
  receiver.port = server.port!;
  receiver.url = `http://127.0.0.1:${server.port}`;
  return receiver;
}
