import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshStoreUrl, MATRIX_NODE_LABELS, testStore } from "./store-matrix.ts";
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
import { Scheduler } from "../../src/scheduler/scheduler.ts";
import { createRunner } from "../../src/runner/create.ts";
import type { Runner } from "../../src/runner/queue.ts";
import { targetOf } from "../../src/modules/data-sources/credentials.ts";
import type { LoginCodes } from "../../src/http/ui/login-codes.ts";
import { storageRegistryFor, type StorageRegistry } from "../../src/storage/registry.ts";
import { contractFor, type ApiContract } from "./status-contract.ts";
import { createNotifications, type Notifications } from "../../src/notify/start.ts";
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
  /**
   * Flags that point a CLI command (`command.run(flags, [])`) at this harness's data dir and
   * store: on the PostgreSQL leg of the matrix a config file in the data dir names the store.
   */
  cliFlags: Record<string, string>;
  logLines: string[];
  /** The app's storage registry (drivers for destination rows); S3 parts are 5 MiB here. */
  storage: StorageRegistry;
  /** The app's scheduler; not started (no timers) unless a test calls `h.scheduler.start()`. */
  scheduler: Scheduler;
  /** The app's runner; not started unless a test calls `h.runner.start()` (scheduler wakes it). */
  runner: Runner;
  /** The app's readiness checks (none registered: `/readyz` is ready until a test adds one). */
  readiness: Readiness;
  /** The daemon's notification sender and stale checks; not started unless a test calls `h.notifications.start()`. */
  notifications: Notifications;
  /** The app's metrics registry (GET /metrics renders it). */
  metrics: MetricsRegistry;
  token(org: string, opts?: { sub?: string; scopes?: string[]; ttlSeconds?: number }): Promise<string>;
  call<T = any>(method: string, path: string, opts?: CallOptions): Promise<CallResult<T>>;
  /** The answer as a Response with its bytes intact (a downloaded file), held to the document like `call`. */
  request(method: string, path: string, opts?: CallOptions): Promise<Response>;
  close(): void;
}

export interface HarnessOptions {
  /** The dashboard's login codes, e.g. with a clock the test moves. */
  loginCodes?: LoginCodes;
  /** The embedded SQLite store whatever the matrix says, for a test about that store itself (store copy). */
  store?: "sqlite";
  /** The PATH the runner finds its tools on (the daemon's own PATH otherwise), e.g. with a stand-in tool first. */
  toolPath?: string;
}

export async function createHarness(env: Record<string, string> = {}, opts: HarnessOptions = {}): Promise<Harness> {
  const dir = tempDir();
  const storeUrl = opts.store === "sqlite" ? null : await freshStoreUrl();
  const { config } = loadConfig({
    env: { SNAPDB_DATA_DIR: dir.path, ...(testStore() === "postgres" ? { SNAPDB_NODE_LABELS: MATRIX_NODE_LABELS } : {}), ...(storeUrl ? { SNAPDB_STORE_URL: storeUrl } : {}), ...env },
    defaultConfigFile: "/nonexistent",
  });
  const secret = hsSecret(config)!;
  const master = masterKey(config);
  const { store } = await openMigratedStore(config);
  const cliFlags: Record<string, string> = { "data-dir": dir.path };
  if (storeUrl) {
    cliFlags.config = join(dir.path, "store.toml");
    writeFileSync(cliFlags.config, `[store]\nurl = ${JSON.stringify(storeUrl)}\n`, { mode: 0o600 });
  }
  const logLines: string[] = [];
  const logger: Logger = createLogger("debug", {}, (line) => logLines.push(line));
  const storage = storageRegistryFor(config, store.db, new SecretBox(master), derivedKey(master, "download"), {
    publicBaseUrl: "http://localhost",
    s3: { partSize: 5 * 1024 * 1024, queueSize: 2 },
  });
  const scheduler = new Scheduler({ db: store.db, logger, catchUp: config.scheduler.catchUp });
  const secrets = new SecretBox(master);
  const metrics = new MetricsRegistry();
  const readiness = new Readiness();
  const runner = createRunner({ db: store.db, config, secrets, storage, logger, metrics, targetOf: (row) => targetOf(row, secrets), toolPath: opts.toolPath });
  scheduler.onJobQueued(() => runner.wakeSoon());
  const notifications = createNotifications({ db: store.db, config, secrets, logger, metrics });
  scheduler.onRestoreQueued(() => runner.wakeSoon());
  const app = buildApp({
    config,
    store,
    logger,
    verifyToken: createTokenVerifier(config.auth, secret),
    cursors: new Cursors(derivedKey(master, "cursor")),
    secrets,
    metrics,
    readiness,
    storage,
    scheduler,
    jobs: runner,
    loginCodes: opts.loginCodes,
  });
  // Every answer is held to the served document (test/helpers/status-contract.ts).
  let contract: Promise<ApiContract> | null = null;
  const contractOf = () => (contract ??= app.handle(new Request("http://localhost/swagger/json")).then(async (r) => contractFor(await r.json())));
  const harness: Harness = {
    app,
    config,
    store,
    secret,
    master,
    dataDir: dir.path,
    cliFlags,
    logLines,
    storage,
    scheduler,
    runner,
    readiness,
    notifications,
    metrics,
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
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      if (opts.token) headers.authorization = `Bearer ${opts.token}`;
      let body: string | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined) headers["content-type"] ??= "application/json";
      const response = await app.handle(new Request(`http://localhost${path}`, { method, headers, body }));
      const bytes = new Uint8Array(await response.arrayBuffer());
      const text = new TextDecoder().decode(bytes);
      (await contractOf()).check({ method, path, status: response.status, headers: response.headers, text });
      return new Response(bytes.byteLength ? bytes : null, { status: response.status, statusText: response.statusText, headers: response.headers });
    },
    async call(method, path, opts = {}) {
      const response = await harness.request(method, path, opts);
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {}
      return { status: response.status, body: parsed as any, headers: response.headers, text };
    },
    close() {
      void runner.stop(0);
      void notifications.stop();
      storage.close();
      scheduler.stop();
      store.close();
      dir.cleanup();
    },
  };
  return harness;
}

export { silentLogger };
