import { buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import { derivedKey, hsSecret, masterKey, openMigratedStore } from "../../src/cli/runtime.ts";
import type { Store } from "../../src/db/client.ts";
import { createTokenVerifier, SCOPES } from "../../src/http/auth.ts";
import { Readiness } from "../../src/http/health.ts";
import { MetricsRegistry } from "../../src/http/metrics.ts";
import { Cursors } from "../../src/http/pagination.ts";
import { SecretBox } from "../../src/crypto/secrets.ts";
import { mintToken } from "../../src/crypto/jwt-mint.ts";
import { silentLogger, createLogger, type Logger } from "../../src/lib/logger.ts";
import { tempDir } from "./tmp.ts";

export interface CallOptions {
  token?: string | null;
  body?: unknown;
  /** Raw body text, sent as is (for malformed JSON tests). */
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface CallResult<T = any> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

/**
 * The real app over a real migrated SQLite store in a temp data dir; requests go through
 * `app.handle(new Request(…))`, so every hook, validator and error mapper runs.
 */
export interface Harness {
  app: ReturnType<typeof buildApp>;
  config: Config;
  store: Store;
  secret: Uint8Array;
  master: Uint8Array;
  dataDir: string;
  logLines: string[];
  token(org: string, opts?: { sub?: string; scopes?: string[]; ttlSeconds?: number }): Promise<string>;
  call<T = any>(method: string, path: string, opts?: CallOptions): Promise<CallResult<T>>;
  close(): void;
}

export async function createHarness(env: Record<string, string> = {}): Promise<Harness> {
  const dir = tempDir();
  const { config } = loadConfig({ env: { SNAPDB_DATA_DIR: dir.path, ...env }, defaultConfigFile: "/nonexistent" });
  const secret = hsSecret(config)!;
  const master = masterKey(config);
  const { store } = openMigratedStore(config);
  const logLines: string[] = [];
  const logger: Logger = createLogger("debug", {}, (line) => logLines.push(line));
  const app = buildApp({
    config,
    store,
    logger,
    verifyToken: createTokenVerifier(config.auth, secret),
    cursors: new Cursors(derivedKey(master, "cursor")),
    secrets: new SecretBox(master),
    metrics: new MetricsRegistry(),
    readiness: new Readiness(),
  });
  const harness: Harness = {
    app,
    config,
    store,
    secret,
    master,
    dataDir: dir.path,
    logLines,
    token: (org, opts = {}) =>
      mintToken({
        secret,
        orgId: org,
        sub: opts.sub ?? "tester",
        scopes: opts.scopes ?? [...SCOPES],
        ttlSeconds: opts.ttlSeconds ?? 600,
        audience: config.auth.audience,
        orgClaim: config.auth.orgClaim,
      }),
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      let body: string | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined) headers["content-type"] ??= "application/json";
      const response = await app.handle(new Request(`http://localhost${path}`, { method, headers, body }));
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {}
      return { status: response.status, body: parsed as any, headers: response.headers, text };
    },
    close() {
      store.close();
      dir.cleanup();
    },
  };
  return harness;
}

export { silentLogger };
