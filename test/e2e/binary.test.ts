import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { ensureCompiledBinary } from "../helpers/daemon.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * The compiled binary, as a user runs it: in an empty directory, with no config at all.
 * Only SNAPDB_LISTEN is set, to port 0 so the OS picks a free one (the log line says which).
 */
const dir = tempDir("snapdb-e2e");
let binary: string;
let daemon: ReturnType<typeof Bun.spawn>;
let baseUrl: string;
const logLines: string[] = [];

async function readLog(stream: ReadableStream<Uint8Array>) {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    logLines.push(...lines);
  }
}

const env = () => {
  const { SNAPDB_CONFIG: _c, SNAPDB_DATA_DIR: _d, SNAPDB_JWT_SECRET: _s, ...rest } = process.env;
  return rest;
};

beforeAll(async () => {
  binary = await ensureCompiledBinary();
  daemon = Bun.spawn([binary, "serve", "--listen", "127.0.0.1:0"], { cwd: dir.path, env: env(), stdout: "pipe", stderr: "pipe" });
  void readLog(daemon.stdout as ReadableStream<Uint8Array>);
  const deadline = Date.now() + 15_000;
  while (!baseUrl && Date.now() < deadline) {
    const line = logLines.map((l) => JSON.parse(l)).find((l) => l.msg === "snapdb listening");
    if (line) baseUrl = line.url;
    else await Bun.sleep(50);
  }
  if (!baseUrl) throw new Error(`daemon did not start: ${logLines.join("\n")} ${await new Response(daemon.stderr as ReadableStream).text()}`);
});

afterAll(() => {
  daemon.kill("SIGKILL");
  dir.cleanup();
});

describe("the compiled binary", () => {
  test("version and help", () => {
    const version = Bun.spawnSync([binary, "version"]);
    expect(version.stdout.toString()).toMatch(/^snapdb \d+\.\d+\.\d+ \(schema \d+, bun 1\.4\.\d+\)\n$/);
    const help = Bun.spawnSync([binary, "--help"]).stdout.toString();
    for (const command of ["serve", "token", "migrate", "version"]) expect(help).toContain(command);
    const bad = Bun.spawnSync([binary, "frobnicate"]);
    expect(bad.exitCode).toBe(2);
  });

  test("generates its keys with mode 0600 in a 0700 data dir", () => {
    const data = join(dir.path, "data");
    expect(statSync(data).mode & 0o777).toBe(0o700);
    for (const file of ["master.key", "jwt-secret"]) expect(statSync(join(data, file)).mode & 0o777).toBe(0o600);
    expect(statSync(join(data, "snapdb.db")).isFile()).toBe(true);
  });

  test("ready, serves its spec and the Swagger UI from inside the binary", async () => {
    expect(await (await fetch(`${baseUrl}/readyz`)).json()).toEqual({ status: "ready" });
    const spec: any = await (await fetch(`${baseUrl}/swagger/json`)).json();
    expect(spec.openapi).toStartWith("3.");
    expect(spec.paths["/audit-log"].get).toBeDefined();
    const ui = await fetch(`${baseUrl}/swagger/`);
    expect(await ui.text()).toContain("swagger-ui");
    const bundle = await fetch(`${baseUrl}/swagger/assets/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(500_000);
  });

  test("a token minted by the binary opens the API; a request without is 401", async () => {
    const minted = Bun.spawnSync([binary, "token", "--org", "acme", "--sub", "me"], { cwd: dir.path, env: env() });
    expect(minted.exitCode).toBe(0);
    const token = minted.stdout.toString().trim();
    expect(token.split(".").length).toBe(3);
    const ok = await fetch(`${baseUrl}/audit-log`, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ items: [], cursors: { next: null } });
    expect((await fetch(`${baseUrl}/audit-log`)).status).toBe(401);
  });

  test("a body over the limit is refused with 413 on a real socket", async () => {
    const token = Bun.spawnSync([binary, "token", "--org", "acme", "--sub", "me"], { cwd: dir.path, env: env() }).stdout.toString().trim();
    const res = await fetch(`${baseUrl}/audit-log`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ blob: "x".repeat(2 * 1024 * 1024) }),
    });
    expect(res.status).toBe(413);
  });

  test("stops cleanly on SIGTERM", async () => {
    daemon.kill("SIGTERM");
    const code = await Promise.race([daemon.exited, Bun.sleep(10_000).then(() => "timeout")]);
    expect(code).toBe(0);
    const messages = logLines.map((l) => JSON.parse(l).msg);
    expect(messages).toContain("shutting down");
    expect(messages.at(-1)).toBe("stopped");
  });
});
