/**
 * `snapdb doctor` on a PostgreSQL store (fleet mode): the store answers and is migrated, and
 * the nodes that share it agree on what they must agree on — the master key (each seals and
 * opens the others' secrets), the version, and the time (schedules fire by each leader's
 * clock; leases use the store's). Looks only: nothing is written to the store.
 */
import { existsSync, readFileSync } from "node:fs";
import { SQL } from "bun";
import type { Config } from "../config/schema.ts";
import { LATEST_PG_SCHEMA_VERSION, pgSchemaVersion } from "../db/migrate-pg.ts";
import { maskStoreUrl } from "../db/pg-store.ts";
import { keyFingerprint } from "../fleet/node.ts";
import { VERSION } from "../version.ts";
import type { CheckResult } from "./doctor-checks.ts";

/** Clocks further apart than this are reported; schedules fire by the leader's clock. */
const SKEW_WARN_MS = 1_000;
/** A minute off fires schedules in the wrong minute: not a warning any more. */
const SKEW_FAIL_MS = 60_000;

interface NodeRow {
  id: string;
  hostname: string;
  version: string;
  master_key_fingerprint: string;
  last_seen_at: number;
  stopped_at: number | null;
  clock_offset_ms: number | null;
}

const result = (name: string, status: CheckResult["status"], detail: string, fix?: string): CheckResult => ({ name, status, detail, fix });
const nameOf = (n: NodeRow) => `${n.id} (${n.hostname})`;

function localFingerprint(config: Config): string | null {
  if (!existsSync(config.masterKeyFile)) return null;
  try {
    const key = Buffer.from(readFileSync(config.masterKeyFile, "utf8").trim(), "base64");
    return key.length === 32 ? keyFingerprint(key) : null;
  } catch {
    return null;
  }
}

export async function checkFleet(config: Config): Promise<CheckResult[]> {
  const masked = maskStoreUrl(config.store.url);
  const client = new SQL(config.store.url, { max: 1, connectionTimeout: 5, idleTimeout: 1 });
  try {
    let version: number;
    try {
      version = await pgSchemaVersion(client);
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).split(config.store.url).join(masked);
      return [result("store", "fail", `${masked} does not answer: ${message}`, "check store.url, the network and the PostgreSQL role's rights")];
    }
    const out: CheckResult[] = [];
    const detail = `${masked}: schema version ${version}, this binary's is ${LATEST_PG_SCHEMA_VERSION}`;
    if (version === LATEST_PG_SCHEMA_VERSION) out.push(result("store", "ok", detail));
    else if (version < LATEST_PG_SCHEMA_VERSION) out.push(result("store", "warn", detail, "the first daemon of this version migrates it at start (or run: snapdb migrate)"));
    else out.push(result("store", "fail", `${detail} (migrated by a newer snapdb)`, "upgrade this node to the fleet's version"));
    if (version === 0) return out;

    const before = Date.now();
    const [now] = await client`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now`;
    const myOffset = Math.round(Number(now.now) - (before + Date.now()) / 2);
    const rows = (await client`SELECT id, hostname, version, master_key_fingerprint, last_seen_at, stopped_at, clock_offset_ms FROM nodes ORDER BY id`) as NodeRow[];
    const storeNow = Number(now.now);
    const leaseMs = config.runner.leaseSeconds * 1000;
    const up = rows.filter((n) => n.stopped_at === null && Number(n.last_seen_at) >= storeNow - leaseMs);
    const down = rows.filter((n) => !up.includes(n));
    out.push(
      result(
        "fleet nodes",
        up.length ? "ok" : "warn",
        `${up.length} up${up.length ? `: ${up.map(nameOf).join(", ")}` : ""}; ${down.length} down or stopped${down.length ? `: ${down.map(nameOf).join(", ")}` : ""}`,
        up.length ? undefined : "start the daemons (systemctl start snapdb)",
      ),
    );

    const mine = localFingerprint(config);
    const foreignKeys = up.filter((n) => n.master_key_fingerprint !== mine);
    if (!mine) out.push(result("fleet master key", "fail", `no readable master key at ${config.masterKeyFile}`, "copy the fleet's master.key here (mode 0600)"));
    else if (foreignKeys.length) {
      out.push(
        result(
          "fleet master key",
          "fail",
          `${foreignKeys.map(nameOf).join(", ")} run${foreignKeys.length === 1 ? "s" : ""} with another master key than ${config.masterKeyFile}: secrets one seals, the others cannot open`,
          "give every node the same master.key file (copy it, mode 0600), then restart those nodes",
        ),
      );
    } else out.push(result("fleet master key", "ok", `every node up holds the key of ${config.masterKeyFile} (fingerprint ${mine})`));

    const otherVersions = up.filter((n) => n.version !== VERSION);
    out.push(
      otherVersions.length
        ? result(
            "fleet versions",
            "warn",
            `this binary is ${VERSION}; ${otherVersions.map((n) => `${nameOf(n)} runs ${n.version}`).join(", ")}`,
            "upgrade every node to one version (one at a time is fine)",
          )
        : result("fleet versions", "ok", `every node up runs ${VERSION}`),
    );

    // Each node's offset to the store's clock (measured at its heartbeat) and this host's, now.
    const offsets = [{ name: "this host", offset: myOffset }, ...up.filter((n) => n.clock_offset_ms !== null).map((n) => ({ name: nameOf(n), offset: Number(n.clock_offset_ms) }))];
    const spread = Math.max(...offsets.map((o) => o.offset)) - Math.min(...offsets.map((o) => o.offset));
    const listing = offsets.map((o) => `${o.name} ${o.offset > 0 ? "-" : "+"}${Math.abs(o.offset)} ms`).join(", ");
    const clocks = `clocks against the store's: ${listing}; spread ${spread} ms`;
    if (spread > SKEW_FAIL_MS) out.push(result("fleet clocks", "fail", clocks, "synchronise the clocks (chrony or systemd-timesyncd on every node and the store's host)"));
    else if (spread > SKEW_WARN_MS) out.push(result("fleet clocks", "warn", clocks, "synchronise the clocks (chrony or systemd-timesyncd): schedules fire by the leader's clock"));
    else out.push(result("fleet clocks", "ok", clocks));
    return out;
  } finally {
    await client.close({ timeout: 0 }).catch(() => {});
  }
}
