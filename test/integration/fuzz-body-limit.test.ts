import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { startDaemon, type Daemon } from "../helpers/daemon.ts";

/**
 * The body limit over a real socket against the real daemon (`snapdb serve`): a body that
 * never ends must get 413 quickly (so it is not being read whole), a huge declared length at
 * once, and the daemon stays healthy. Raw TCP, because fetch would not let the test keep
 * writing after the answer, nor lie about Content-Length.
 */
const LIMIT = 64 * 1024;
let d: Daemon;
let token: string;

beforeAll(async () => {
  d = await startDaemon({ env: { SNAPDB_BODY_LIMIT_BYTES: String(LIMIT), SNAPDB_LOG_LEVEL: "warn" } });
  token = await d.token("org_a", { scopes: ["backup.write", "backup.read"] });
}, 60_000);
afterAll(async () => {
  await d?.stop();
});

interface RawAnswer {
  status: number;
  text: string;
  ms: number;
  sentBytes: number;
}

/** Sends `head`, then `chunk` again and again (chunked encoding) until the server answers. */
function rawRequest(head: string, opts: { endless?: boolean; body?: string } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let sentBytes = 0;
    let answer = "";
    let done = false;
    const socket: Socket = connect(d.port, "127.0.0.1");
    const chunk = `4000\r\n${'{"name":"'.padEnd(0x4000, "x")}\r\n`;
    const finish = () => {
      if (done) return;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (!m || !answer.includes("\r\n\r\n")) return;
      done = true;
      clearTimeout(timer);
      resolve({ status: Number(m[1]), text: answer, ms: performance.now() - started, sentBytes });
      socket.destroy();
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer after 10 s (${sentBytes} body bytes sent): ${answer}`));
    }, 10_000);
    const pump = () => {
      // Keep the pipe full while there is no answer; the server must not wait for an end.
      while (!done && opts.endless && socket.write(chunk)) sentBytes += chunk.length;
    };
    socket.on("connect", () => {
      socket.write(head);
      if (opts.body) socket.write(opts.body);
      pump();
    });
    socket.on("drain", pump);
    socket.on("data", (b) => {
      answer += b.toString("latin1");
      setTimeout(finish, 20); // let the body of the answer arrive too
    });
    socket.on("error", () => finish());
    socket.on("close", () => {
      finish();
      if (!done) {
        clearTimeout(timer);
        reject(new Error(`closed without an answer (${sentBytes} body bytes sent): ${answer}`));
      }
    });
  });
}

const headOf = (method: string, path: string, headers: Record<string, string>) =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${d.port}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;

const bodyOf = (text: string) =>
  JSON.parse(
    text
      .slice(text.indexOf("\r\n\r\n") + 4)
      .replace(/^[0-9a-f]+\r\n/i, "")
      .replace(/\r\n0\r\n\r\n$/, ""),
  );

describe("request bodies over the limit, on a real socket", () => {
  test("a chunked body that never ends → 413 PAYLOAD_TOO_LARGE within seconds", async () => {
    const res = await rawRequest(headOf("POST", "/data-sources", { authorization: `Bearer ${token}`, "content-type": "application/json", "transfer-encoding": "chunked" }), { endless: true });
    expect(res.status).toBe(413);
    expect(bodyOf(res.text)).toEqual({ code: "PAYLOAD_TOO_LARGE", message: `request body is larger than ${LIMIT} bytes` });
    expect(res.ms).toBeLessThan(5_000);
    console.log(`endless body: 413 after ${Math.round(res.ms)} ms, ${res.sentBytes} bytes written by then`);
  });

  test("without a token too: the endless body is cut off, never buffered", async () => {
    const res = await rawRequest(headOf("POST", "/backup-policies", { "content-type": "application/json", "transfer-encoding": "chunked" }), { endless: true });
    expect([401, 413]).toContain(res.status);
    expect(res.ms).toBeLessThan(5_000);
  });

  test("a declared Content-Length of 10 GB → 413 at once, before any body byte", async () => {
    const res = await rawRequest(headOf("PUT", "/data-sources/ds_x/credentials", { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(10 * 1024 ** 3) }));
    expect(res.status).toBe(413);
    expect(res.ms).toBeLessThan(2_000);
  });

  test("just under the limit is read and validated (400), and the daemon is still healthy", async () => {
    const body = JSON.stringify({ name: "n".repeat(LIMIT - 100), engine: "sqlite", path: "/x.db" });
    const res = await rawRequest(headOf("POST", "/data-sources", { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }), {
      body,
    });
    expect(res.status).toBe(400);
    expect(bodyOf(res.text).code).toBe("INVALID_INPUT");
    expect((await fetch(`${d.baseUrl}/healthz`)).status).toBe(200);
    expect(d.logs()).not.toMatch(/"level":"error"/);
  });
});
