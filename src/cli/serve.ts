import { directUrlOf, keyFingerprint, nodeIdOf, startHeartbeat } from "../fleet/node.ts";
import { type Leadership, pgLeadership, soleLeader } from "../fleet/leader.ts";
import { maskStoreUrl } from "../db/pg-store.ts";
import { LATEST_PG_SCHEMA_VERSION } from "../db/migrate-pg.ts";
import { join } from "node:path";
import { buildApp } from "../app.ts";
import { loadConfig } from "../config/load.ts";
import { printableConfig } from "../config/print.ts";
import { LATEST_SCHEMA_VERSION } from "../db/migrate.ts";
import { createTokenVerifier } from "../http/auth.ts";
import { Readiness } from "../http/health.ts";
import { MetricsRegistry } from "../http/metrics.ts";
import { Cursors } from "../http/pagination.ts";
import { removeStaleScratch } from "../engines/dump.ts";
import { guardToolsWithDaemon } from "../engines/tool-stream.ts";
import { createLogger } from "../lib/logger.ts";
import { storageRegistryFor } from "../storage/registry.ts";
import { Scheduler } from "../scheduler/scheduler.ts";
import { createRunner, startRetentionSweep } from "../runner/create.ts";
import { createWalArchiver } from "../runner/wal-archiver.ts";
import { recoverInterruptedJobs } from "../runner/recovery.ts";
import { dropLeftoverScratchDatabases, recoverInterruptedPlanRuns, removeDrillScratchFiles } from "../runner/drill-recovery.ts";
import { OutboundPolicy } from "../net/outbound-policy.ts";
import { targetOf } from "../modules/data-sources/credentials.ts";
import { createNotifications } from "../notify/start.ts";
import { VERSION } from "../version.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, configFlags, type Command } from "./command.ts";
import { lockDataDir } from "./data-dir-lock.ts";
import { derivedKey, hsSecret, openMigratedStore, secretBoxFor, secureDataDir, storeFile } from "./runtime.ts";

function splitListen(listen: string): { hostname: string; port: number } {
  const i = listen.lastIndexOf(":");
  return { hostname: listen.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port: Number(listen.slice(i + 1)) };
}

export const serveCommand: Command = {
  name: "serve",
  summary: "run the daemon: API, scheduler and runner",
  usage: `snapdb serve [flags]

Starts the daemon. With no config at all it listens on 127.0.0.1:8484, keeps its
store in ./data, and generates a master key and a JWT signing secret there (0600).

  --print-config          print the effective config (secrets masked) and exit

${CONFIG_HELP}`,
  options: { ...CONFIG_OPTIONS, "print-config": { type: "boolean" } },
  async run(values) {
    const { config, file: configFile } = loadConfig({ flags: configFlags(values), env: process.env });
    if (values["print-config"]) {
      process.stdout.write(printableConfig(config));
      return 0;
    }
    // Before anything touches the data dir: a second daemon here would fail the first one's
    // running jobs as interrupted and delete their temp files. Held until the process exits.
    // A data dir that others may write is refused before anything (the lock file included) goes into it.
    secureDataDir(config.dataDir);
    const lock = lockDataDir(config.dataDir, "serve");
    const logger = createLogger(config.log.level, { service: "snapdb" });
    const { master, secrets } = secretBoxFor(config);
    const verifyToken = createTokenVerifier(config.auth, hsSecret(config));
    const { store, migration } = await openMigratedStore(config);
    if (migration.applied.length) logger.info("store migrated", { from: migration.from, to: migration.to, applied: migration.applied });

    const readiness = new Readiness();
    let stopping = false;
    readiness.register("store", () => store.healthy());
    readiness.register("migrations", () => store.schemaVersion() === (store.dialect === "postgres" ? LATEST_PG_SCHEMA_VERSION : LATEST_SCHEMA_VERSION));
    readiness.register("accepting", () => !stopping);
    // Ready once SIGTERM is handled (the end of the start): before that a stop would kill, not drain.
    let started = false;
    readiness.register("started", () => started);
    const fleet = store.dialect === "postgres";
    // In a fleet the leader's scheduler also picks up attachments changed through other nodes:
    // their services cannot reach its timers, so it reads the table every few seconds.
    const scheduler = new Scheduler({
      db: store.db,
      logger: logger.child({ component: "scheduler" }),
      catchUp: config.scheduler.catchUp,
      reconcileMs: fleet ? Math.min(60_000, Math.max(2_000, (config.runner.leaseSeconds * 1000) / 6)) : undefined,
    });
    let leadership: Leadership | null = null;
    // A follower runs no scheduler and is ready all the same; the leader is ready once its scheduler runs.
    readiness.register("scheduler", () => (leadership !== null && !leadership.isLeader && fleet) || scheduler.running);
    const metrics = new MetricsRegistry();
    const publicBaseUrl = (config.http.publicUrl || `http://${config.listen}`).replace(/\/+$/, "");
    const storage = storageRegistryFor(config, store.db, secrets, derivedKey(master, "download"), { publicBaseUrl });
    const runner = createRunner({ db: store.db, config, configFile, secrets, storage, logger, metrics, targetOf: (row) => targetOf(row, secrets) });
    readiness.register("runner", () => runner.isRunning);
    const notifications = createNotifications({ db: store.db, config, secrets, logger, metrics });
    const walArchiver = createWalArchiver({ db: store.db, config, secrets, storage, logger, metrics, targetOf: (row) => targetOf(row, secrets) });
    scheduler.onJobQueued(() => runner.wakeSoon());
    scheduler.onRestoreQueued(() => runner.wakeSoon());
    const app = buildApp({
      config,
      store,
      logger,
      verifyToken,
      cursors: new Cursors(derivedKey(master, "cursor")),
      secrets,
      metrics,
      readiness,
      storage,
      scheduler,
      jobs: runner,
    });
    // Restore drills and refreshes a crash left `running` are failed and reported (drill.failed) first;
    // then jobs and other restores are failed and their uploads removed before any new job starts.
    // Fleet: this node's own rows (its node id survives restarts), never another live node's.
    const nodeId = nodeIdOf(config.dataDir);
    const stopHeartbeat = await startHeartbeat(
      store.db,
      { id: nodeId, labels: config.node.labels, masterKeyFingerprint: keyFingerprint(master), url: directUrlOf(config.listen) },
      Math.max(1000, (config.runner.leaseSeconds * 1000) / 3),
      logger,
    );
    await recoverInterruptedPlanRuns(store.db, logger, undefined, nodeId);
    await recoverInterruptedJobs(store.db, storage, logger, { nodeId });
    // Jobs of nodes that stopped renewing their lease (killed, cut off) are failed INTERRUPTED and,
    // when their policy has retries left, queued again for whichever node is free.
    const reaper = setInterval(() => {
      recoverInterruptedJobs(store.db, storage, logger, { expiredOnly: true, retry: true })
        .then(async (ids) => {
          if (ids.length) await runner.wake();
        })
        .catch((err) => logger.error("lease reaper failed", { error: err }));
    }, config.runner.leaseSeconds * 1000);
    // A kill -9 mid-backup of a SQLite source leaves its snapshot (a plain copy of the user's data) in tmp/.
    const staleSnapshots = removeStaleScratch(join(config.dataDir, "tmp"));
    if (staleSnapshots) logger.warn("removed SQLite snapshots left by an interrupted run", { count: staleSnapshots });
    // ... and a drill its scratch: files now, databases on the drills' servers in the background (a
    // server that does not answer must not hold up the start; drills of this run are left alone).
    const drillFiles = removeDrillScratchFiles(join(config.dataDir, "tmp"));
    if (drillFiles) logger.warn("removed SQLite drill scratch files left by an interrupted drill", { count: drillFiles });
    void dropLeftoverScratchDatabases(store.db, (row) => targetOf(row, secrets), OutboundPolicy.fromConfig(config.network), logger).catch((error) =>
      logger.error("dropping leftover drill scratch databases failed", { error }),
    );
    // From now on every dump and restore tool dies with the daemon, where setpriv allows it.
    await guardToolsWithDaemon(process.env.PATH ?? "/usr/bin:/bin");
    // Listening before any job can start: a daemon that cannot have its port stops here, having
    // run nothing. /readyz says 503 until the runner and the scheduler run.
    const { hostname, port } = splitListen(config.listen);
    try {
      // The body limit is enforced by the app with a clear 413; Bun's own cap is a backstop.
      // reusePort off (Elysia turns it on): a second daemon on this port fails here instead
      // of silently sharing the requests with us. idleTimeout: Bun also counts it while a
      // handler works, so a handler that may take longer lifts it for its request (server.timeout).
      app.listen({ hostname, port, reusePort: false, maxRequestBodySize: config.http.bodyLimitBytes + 64 * 1024, idleTimeout: config.http.idleTimeoutSeconds });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "EADDRINUSE" ? "the address is in use (another snapdb, or another program)" : (err as Error).message;
      logger.error("cannot listen", { listen: config.listen, error: why });
      process.stderr.write(`snapdb serve: cannot listen on ${config.listen}: ${why}\n`);
      clearInterval(reaper);
      await stopHeartbeat().catch(() => {});
      storage.close();
      store.close();
      await store.closed;
      lock.release();
      return 1;
    }
    await runner.start();
    // What one node does for the whole fleet (the only node, on the embedded store): the leader.
    let stopSweep = () => {};
    const duties = {
      async elected() {
        // Deliveries left pending (by a previous run, or a previous leader) go out first; then events as they come.
        await notifications.start();
        // Continuous WAL archiving of PostgreSQL sources with a physical policy (pg_receivewal).
        walArchiver.start();
        stopSweep = startRetentionSweep({ db: store.db, storage, logger });
        // Timers for every enabled attachment, then the catch-up runs of what was missed meanwhile.
        await scheduler.start();
      },
      async deposed() {
        // No new scheduled runs first: another node may be about to lead.
        scheduler.stop();
        stopSweep();
        await Promise.all([notifications.stop(), walArchiver.stop()]);
      },
    };
    leadership = fleet ? pgLeadership({ url: config.store.url, leaseMs: config.runner.leaseSeconds * 1000, logger: logger.child({ component: "leader" }), nodeId }, duties) : soleLeader(duties);
    await leadership.start();
    const url = `http://${app.server!.hostname}:${app.server!.port}`;
    logger.info("snapdb listening", { url, version: VERSION, dataDir: config.dataDir, store: config.store.url ? maskStoreUrl(config.store.url) : storeFile(config) });

    const done = Promise.withResolvers<number>();
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info("shutting down", { signal });
      // No new scheduled runs (the leader's duties stop, its lock goes to another node); stop
      // accepting, let requests in flight finish, then close the store cleanly. Meanwhile each
      // pg_receivewal is stopped cleanly (its partial segment is resumed at the next start) and
      // deliveries in flight stay pending for the next leader or start.
      const leaderStopped = leadership?.stop() ?? Promise.resolve();
      await app.server?.stop(false);
      // Running backups get a grace period, then are aborted and re-queued (or failed) as INTERRUPTED.
      await Promise.all([runner.stop(config.runner.shutdownGraceSeconds * 1000), leaderStopped]);
      clearInterval(reaper);
      await stopHeartbeat().catch((err) => logger.warn("could not mark the node stopped", { error: err }));
      storage.close();
      store.close();
      await store.closed;
      lock.release();
      logger.info("stopped");
      done.resolve(0);
    };
    process.on("SIGTERM", () => void shutdown("SIGTERM"));
    process.on("SIGINT", () => void shutdown("SIGINT"));
    started = true;
    return done.promise;
  },
};
