import { rawAll } from "../db/raw.ts";
import { sql } from "drizzle-orm";
import { Counter, Gauge } from "prom-client";
import type { Db } from "../db/client.ts";
import type { MetricsRegistry } from "../http/metrics.ts";
import type { ReceiverState } from "./wal-receiver.ts";

interface Archived {
  data_source_id: string;
  /** Bytes into the WAL where the newest archived segment ends. */
  upto: number;
  /** The newest archived segment's number (its name is the timeline and this, in hex). */
  segno: number;
  at: number;
}

/**
 * Prometheus metrics of WAL archiving, per data source with a physical policy. The live ones
 * (receiver up, slot, lag) come from the running receivers, so a source that stops being
 * archived loses its series; the last archive time comes from the store.
 */
export function registerWalMetrics(db: Db, metrics: MetricsRegistry, states: () => ReceiverState[]): { gap(dataSourceId: string, missing: number): void } {
  const registers = [metrics.registry];
  const labelNames = ["data_source_id"] as const;
  const archived = async () =>
    new Map(
      (
        await rawAll<Archived>(
          db,
          sql`SELECT data_source_id, max((segno + 1) * size_bytes) AS upto, max(segno) AS segno, max(archived_at) AS at FROM wal_segments WHERE segno IS NOT NULL GROUP BY data_source_id`,
          ["upto", "segno", "at"],
        )
      ).map((r) => [r.data_source_id, r]),
    );
  new Gauge({
    name: "snapdb_wal_receiver_up",
    help: "1 while pg_receivewal streams the source's WAL, 0 while it is being restarted.",
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const s of states()) this.set({ data_source_id: s.dataSourceId }, s.receiving ? 1 : 0);
    },
  });
  new Gauge({
    name: "snapdb_wal_last_archived_timestamp_seconds",
    help: "When the source's newest WAL segment was archived.",
    labelNames,
    registers,
    async collect() {
      this.reset();
      for (const row of (await archived()).values()) this.set({ data_source_id: row.data_source_id }, Math.floor(row.at / 1000));
    },
  });
  new Gauge({
    name: "snapdb_wal_last_archived_segment",
    help: "The source's newest archived WAL segment, by number (the WAL position it starts at divided by the segment size): it grows by one per segment archived.",
    labelNames,
    registers,
    async collect() {
      this.reset();
      for (const row of (await archived()).values()) this.set({ data_source_id: row.data_source_id }, row.segno);
    },
  });
  new Gauge({
    name: "snapdb_wal_archive_lag_bytes",
    help: "WAL the server has written past the end of the newest archived segment (the current, unfinished segment included).",
    labelNames,
    registers,
    async collect() {
      this.reset();
      const done = await archived();
      for (const s of states()) {
        const upto = done.get(s.dataSourceId)?.upto;
        if (s.status && upto !== undefined) this.set({ data_source_id: s.dataSourceId }, Math.max(0, s.status.current - upto));
      }
    },
  });
  new Gauge({
    name: "snapdb_wal_archive_lag_seconds",
    help: "Seconds since the newest segment was archived while the server has written WAL past it: how old the oldest WAL not yet archived may be.",
    labelNames,
    registers,
    async collect() {
      this.reset();
      const done = await archived();
      const now = Date.now();
      for (const s of states()) {
        const row = done.get(s.dataSourceId);
        if (!s.status || !row) continue;
        this.set({ data_source_id: s.dataSourceId }, s.status.current > row.upto ? Math.max(0, (now - row.at) / 1000) : 0);
      }
    },
  });
  new Gauge({
    name: "snapdb_wal_slot_retained_bytes",
    help: "WAL the source's replication slot holds on the server (pg_current_wal_lsn() - restart_lsn).",
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const s of states()) {
        if (s.status?.restartLsn != null) this.set({ data_source_id: s.dataSourceId }, Math.max(0, s.status.current - s.status.restartLsn));
      }
    },
  });
  new Gauge({
    name: "snapdb_wal_slot_keep_limit_bytes",
    help: "The source's max_slot_wal_keep_size in bytes; -1 is unlimited (a stalled archive can fill the server's disk).",
    labelNames,
    registers,
    collect() {
      this.reset();
      for (const s of states()) if (s.status) this.set({ data_source_id: s.dataSourceId }, s.status.maxKeepMb < 0 ? -1 : s.status.maxKeepMb * 1024 * 1024);
    },
  });
  const gaps = new Counter({
    name: "snapdb_wal_gaps_total",
    help: "Gaps found in a source's WAL archive since start (segments missing before one archived): restores cannot replay across them.",
    labelNames,
    registers,
  });
  return { gap: (dataSourceId, missing) => gaps.inc({ data_source_id: dataSourceId }, missing > 0 ? 1 : 0) };
}
