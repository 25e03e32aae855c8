import { join } from "node:path";
import { and, eq } from "drizzle-orm";
import { recordAudit } from "../audit/record.ts";
import type { SecretBox } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import { attachments, backupPolicies, dataSources, storageDestinations } from "../db/schema.ts";
import { pinTarget } from "../engines/network.ts";
import type { Logger } from "../lib/logger.ts";
import { OutboundPolicy } from "../net/outbound-policy.ts";
import type { StorageRegistry } from "../storage/registry.ts";
import type { BackupDeps } from "./backup.ts";
import type { CreateRunnerInput } from "./create.ts";
import type { Compression } from "./compression.ts";
import { WalReceiver, type ReceiverState } from "./wal-receiver.ts";
import { registerWalMetrics } from "./wal-metrics.ts";
import { removeAllWal } from "./wal-retention.ts";
import { WAL_ARCHIVER_ACTOR, type WalTarget } from "./wal-upload.ts";

export interface WalArchiverDeps {
  db: Db;
  secrets: SecretBox;
  storage: StorageRegistry;
  targetOf: BackupDeps["targetOf"];
  outbound: OutboundPolicy;
  toolPath: string;
  /** The daemon's data dir: each source's spool is `wal-spool/<data source id>/` in it. */
  dataDir: string;
  logger: Logger;
  /** How often attachments are read again (a physical policy attached, disabled, detached). */
  syncIntervalMs?: number;
  pollIntervalMs?: number;
  statusIntervalMs?: number;
  onGap?(dataSourceId: string, missing: number): void;
}

type DataSourceRow = typeof dataSources.$inferSelect;

/** Every source that should be archived now: an enabled attachment of a physical policy. */
async function wanted(db: Db): Promise<Map<string, { source: DataSourceRow; target: WalTarget }>> {
  const rows = await db
    .select({ source: dataSources, policy: backupPolicies, destination: storageDestinations })
    .from(attachments)
    .innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId))
    .innerJoin(dataSources, eq(dataSources.id, attachments.dataSourceId))
    .innerJoin(storageDestinations, eq(storageDestinations.id, backupPolicies.destinationId))
    .where(and(eq(attachments.enabled, true), eq(backupPolicies.method, "physical"), eq(dataSources.engine, "postgres")));
  const out = new Map<string, { source: DataSourceRow; target: WalTarget }>();
  for (const { source, policy, destination } of rows) {
    out.set(source.id, {
      source,
      target: {
        orgId: source.orgId,
        dataSourceId: source.id,
        destination,
        compression: policy.compression as Compression,
        encrypt: policy.encryption.enabled,
        extraRecipients: policy.encryption.recipients ?? [],
      },
    });
  }
  return out;
}

/** Whether a (disabled) physical attachment still exists for the source: then its slot stays. */
async function stillAttached(db: Db, dataSourceId: string): Promise<boolean> {
  return !!(
    await db
      .select({ id: attachments.id })
      .from(attachments)
      .innerJoin(backupPolicies, eq(backupPolicies.id, attachments.policyId))
      .where(and(eq(attachments.dataSourceId, dataSourceId), eq(backupPolicies.method, "physical")))
  )[0];
}

/**
 * Continuous WAL archiving for every PostgreSQL source with an enabled physical policy: one
 * WalReceiver each, started when such an attachment appears and stopped when it goes. A
 * disabled attachment pauses archiving and keeps the slot (the server keeps WAL for it, up
 * to its max_slot_wal_keep_size); a detached one drops the slot. Attachments are read again
 * every `syncIntervalMs`, so API changes need no wiring into the services.
 */
export class WalArchiver {
  private readonly receivers = new Map<string, WalReceiver>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private syncing: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly deps: WalArchiverDeps) {}

  start(): void {
    this.stopped = false;
    // Nobody awaits these: a store gone for a moment is logged and retried at the next sync,
    // never an unhandled rejection (which would end the daemon).
    const background = () => this.sync().catch((error) => this.deps.logger.warn("could not read the physical attachments; the next sync retries", { error }));
    void background();
    this.timer = setInterval(() => void background(), this.deps.syncIntervalMs ?? 5000);
  }

  /** What the metrics show, per archived source. */
  states(): ReceiverState[] {
    return [...this.receivers.values()].map((r) => r.state);
  }

  receiverOf(dataSourceId: string): WalReceiver | undefined {
    return this.receivers.get(dataSourceId);
  }

  /** Brings the running receivers in line with the attachments; one sync at a time. */
  sync(): Promise<void> {
    this.syncing ??= this.syncOnce().finally(() => (this.syncing = null));
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped) return;
    const want = await wanted(this.deps.db);
    for (const [id, { target }] of want) {
      const running = this.receivers.get(id);
      if (running) {
        running.update(target);
        continue;
      }
      const receiver = new WalReceiver(
        {
          db: this.deps.db,
          secrets: this.deps.secrets,
          storage: this.deps.storage,
          toolPath: this.deps.toolPath,
          logger: this.deps.logger.child({ dataSourceId: id }),
          pinnedTarget: () => this.pinnedTarget(id),
          pollIntervalMs: this.deps.pollIntervalMs ?? 1000,
          statusIntervalMs: this.deps.statusIntervalMs ?? 15_000,
          onGap: this.deps.onGap,
        },
        target,
        join(this.deps.dataDir, "wal-spool", id),
      );
      this.receivers.set(id, receiver);
      receiver.start();
      this.deps.logger.info("WAL archiving started", { dataSourceId: id, slot: receiver.slot });
    }
    for (const [id, receiver] of this.receivers) {
      if (want.has(id)) continue;
      this.receivers.delete(id);
      if (await stillAttached(this.deps.db, id)) {
        await receiver.stop();
        this.deps.logger.info("WAL archiving paused (the physical attachment is disabled; its slot stays)", { dataSourceId: id });
        continue;
      }
      const sourceLeft = !!(await this.deps.db.select({ id: dataSources.id }).from(dataSources).where(eq(dataSources.id, id)))[0];
      const dropped = await receiver.retire(sourceLeft);
      // Segments archived after the source's delete took its rows: they go too.
      if (!sourceLeft) await removeAllWal(this.deps.db, this.deps.storage, this.deps.logger, id);
      const orgId = receiver.orgId;
      await this.deps.db.transaction(async (tx) =>
        recordAudit(
          tx,
          { orgId, actor: WAL_ARCHIVER_ACTOR, requestId: null, ip: null },
          {
            action: "wal_archive.stopped",
            targetType: "data_source",
            targetId: id,
            metadata: { slot: receiver.slot, slotDropped: dropped },
          },
        ),
      );
      this.deps.logger.info("WAL archiving stopped (no physical policy is attached any more)", { dataSourceId: id, slotDropped: dropped });
    }
  }

  private async pinnedTarget(dataSourceId: string) {
    const row = (await this.deps.db.select().from(dataSources).where(eq(dataSources.id, dataSourceId)))[0];
    if (!row) throw new Error("the data source was deleted");
    return pinTarget(this.deps.targetOf(row), this.deps.outbound);
  }

  /** Daemon shutdown: every pg_receivewal stopped cleanly; slots and spools stay for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
    await Promise.all(
      [...this.receivers].map(async ([dataSourceId, receiver]) => {
        const ended = await receiver.stop();
        this.deps.logger.info("WAL archiving stopped for shutdown (the slot and the spool's partial segment stay for the next start)", {
          dataSourceId,
          pgReceivewal: ended ?? "not running",
        });
      }),
    );
    this.receivers.clear();
  }
}

/** The daemon's archiver: config's data dir and outbound policy, the daemon's PATH, metrics. */
export function createWalArchiver(input: CreateRunnerInput & { intervals?: Pick<WalArchiverDeps, "syncIntervalMs" | "pollIntervalMs" | "statusIntervalMs"> }): WalArchiver {
  let gaps: ((dataSourceId: string, missing: number) => void) | undefined;
  const archiver = new WalArchiver({
    db: input.db,
    secrets: input.secrets,
    storage: input.storage,
    targetOf: input.targetOf,
    outbound: OutboundPolicy.fromConfig(input.config.network),
    toolPath: input.toolPath ?? process.env.PATH ?? "/usr/bin:/bin",
    dataDir: input.config.dataDir,
    logger: input.logger.child({ component: "wal-archiver" }),
    onGap: (id, missing) => gaps?.(id, missing),
    ...input.intervals,
  });
  if (input.metrics) gaps = registerWalMetrics(input.db, input.metrics, () => archiver.states()).gap;
  return archiver;
}
