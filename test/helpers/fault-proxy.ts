/**
 * A tiny HTTP proxy on loopback in front of a storage server (s3rver), to inject faults into
 * chosen requests: an answer of our own (500s), a reset connection, a delay before forwarding,
 * a held answer (the upstream already did the work, the client does not know yet), or a dead
 * upstream (the client's connection is reset, as when the storage server goes away).
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";

export interface ProxiedRequest {
  method: string;
  /** Path and query, e.g. `/bucket/key?partNumber=2&uploadId=…`. */
  url: string;
  /** The request's headers (e.g. `authorization`, to see which credentials signed it). */
  headers?: IncomingMessage["headers"];
}

export interface Fault {
  /** Answer with this status (an S3-style XML error) instead of forwarding. */
  status?: number;
  /** Reset the client's connection instead of answering (a storage server that went away). */
  reset?: boolean;
  /** Wait this long before forwarding. */
  delayMs?: number;
  /** Forward, then hold the upstream's answer until this settles before passing it on. */
  holdResponse?: Promise<unknown>;
  /** Pass the upstream's answer on slowly: `chunkBytes` at a time, `pauseMs` apart. */
  slowBody?: { chunkBytes: number; pauseMs: number };
  /** Called once the upstream has answered (before any hold). */
  onUpstreamAnswered?: (status: number) => void;
}

export interface FaultProxy {
  endpoint: string;
  port: number;
  /** Every request seen, in order (method and url). */
  seen: ProxiedRequest[];
  /** Decides the fault of each request; null forwards it untouched. */
  rule: (req: ProxiedRequest) => Fault | null;
  /** Where requests are forwarded (`http://127.0.0.1:port`); may be changed while running. */
  upstream: string;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: string): Promise<FaultProxy> {
  const sockets = new Set<Socket>();
  const proxy: FaultProxy = {
    endpoint: "",
    port: 0,
    seen: [],
    rule: () => null,
    upstream,
    close: async () => {
      for (const s of sockets) s.destroy();
      // Bounded: a held answer (holdResponse that never settles) must not keep close() waiting.
      await Promise.race([new Promise<void>((resolve) => server.close(() => resolve())), Bun.sleep(1000)]);
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const seen = { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers };
    proxy.seen.push(seen);
    const fault = proxy.rule(seen);
    if (fault?.delayMs) await Bun.sleep(fault.delayMs);
    if (fault?.reset) {
      req.socket.destroy();
      return;
    }
    if (fault?.status) {
      req.resume();
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected fault</Message></Error>`;
      res.writeHead(fault.status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    const target = new URL(proxy.upstream);
    const up = httpRequest(
      // agent: false — one upstream connection per request, so a stopped upstream is seen at once.
      { host: target.hostname, port: Number(target.port), method: req.method, path: req.url, headers: req.headers, agent: false },
      async (upRes) => {
        fault?.onUpstreamAnswered?.(upRes.statusCode ?? 0);
        if (fault?.holdResponse) {
          // Read the whole (small) answer first, so the upstream's work is complete, then hold it.
          const chunks: Buffer[] = [];
          for await (const c of upRes) chunks.push(c as Buffer);
          await fault.holdResponse.catch(() => {});
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          res.end(Buffer.concat(chunks));
          return;
        }
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (fault?.slowBody) {
          const { chunkBytes, pauseMs } = fault.slowBody;
          for await (const c of upRes) {
            const buf = c as Buffer;
            for (let i = 0; i < buf.length && !res.destroyed; i += chunkBytes) {
              res.write(buf.subarray(i, i + chunkBytes));
              await Bun.sleep(pauseMs);
            }
            if (res.destroyed) return upRes.destroy();
          }
          res.end();
          return;
        }
        upRes.pipe(res);
      },
    );
    // The storage server is gone: reset the client's connection, as a dead server would.
    up.on("error", () => req.socket.destroy());
    // The client went away (killed mid-upload): drop the upstream request too, or the storage
    // server waits for the rest of its body forever (and cannot close).
    res.on("close", () => up.destroy());
    req.pipe(up);
  };

  const server: Server = createServer((req, res) => void handle(req, res).catch(() => req.socket.destroy()));
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  proxy.port = (server.address() as { port: number }).port;
  proxy.endpoint = `http://127.0.0.1:${proxy.port}`;
  return proxy;
}
