import { SQL } from "bun";
import type { DumpCommand } from "./dump.ts";
import { DumpSetupError } from "./dump.ts";
import { addressOf, bareHost, connectionOptions } from "./network.ts";
import { conninfoValue } from "./pg-conninfo.ts";
import { findTool } from "./process.ts";
import type { SourceTarget } from "./types.ts";
import { parseLsn, parseSegmentName } from "./wal-names.ts";

/**
 * PostgreSQL's own tools for physical backups: `pg_basebackup` (a base backup, tar to
 * stdout) and `pg_receivewal` (the WAL, streamed over a replication slot). Both take a
 * replication connection: a conninfo of quoted values without `dbname` (the tools add
 * `replication=true`), to the pinned address (network.ts pinTarget), password in the
 * environment. The role needs the REPLICATION attribute and a `replication` line in pg_hba.conf.
 */

/** `snapdb_<data source id, lowercased, anything but [a-z0-9] as _>`: a valid slot name (≤ 63). */
export function slotNameOf(dataSourceId: string): string {
  return `snapdb_${dataSourceId.toLowerCase().replace(/[^a-z0-9]/g, "_")}`.slice(0, 63);
}

function replicationConninfo(target: SourceTarget): string {
  const pairs: [string, string][] = [
    ["host", bareHost(target.host)],
    ["hostaddr", addressOf(target)],
    ["user", target.credentials?.username ?? ""],
  ];
  return pairs.map(([k, v]) => `${k}=${conninfoValue(v)}`).join(" ");
}

function tool(name: string, toolPath: string): string {
  const found = findTool(name, toolPath);
  if (!found) throw new DumpSetupError("DUMP_TOOL_MISSING", `${name} is not on the daemon's PATH (${toolPath}); install the PostgreSQL client tools`);
  return found;
}

/** The connection arguments and secret variables every replication tool gets. */
function connection(target: SourceTarget): { args: string[]; secretEnv: Record<string, string> } {
  if (!target.credentials) throw new DumpSetupError("AUTH_FAILED", "the data source has no credentials");
  const secretEnv: Record<string, string> = { PGPASSWORD: target.credentials.password, PGCONNECT_TIMEOUT: "15" };
  if (target.options.sslMode) secretEnv.PGSSLMODE = target.options.sslMode;
  return { args: ["--no-password", `--port=${target.port ?? 5432}`, `--dbname=${replicationConninfo(target)}`], secretEnv };
}

/**
 * `pg_basebackup -D - -Ft -X none`: the whole cluster as one tar on stdout, no WAL inside
 * (the archive has it). Refused by the tool when the cluster has tablespaces (only one tar
 * can go to stdout).
 */
export function baseBackupCommand(target: SourceTarget, toolPath: string, opts: { fastCheckpoint: boolean; label: string }): DumpCommand {
  const { args, secretEnv } = connection(target);
  const argv = [tool("pg_basebackup", toolPath), "--pgdata=-", "--format=tar", "--wal-method=none", `--label=${opts.label}`, ...args];
  if (opts.fastCheckpoint) argv.push("--checkpoint=fast");
  return { argv, secretEnv };
}

/**
 * Streams the WAL into `spoolDir` over `slot`: the current segment as `<name>.partial`,
 * renamed to `<name>` once complete and fsynced. `--no-loop`: on a lost connection it exits
 * and the archiver restarts it (with backoff, and logs why). Not `--synchronous`: the slot
 * advances when a segment is complete, so a restart resumes at the partial segment's start.
 */
export function receiveWalCommand(target: SourceTarget, toolPath: string, slot: string, spoolDir: string): DumpCommand {
  const { args, secretEnv } = connection(target);
  return { argv: [tool("pg_receivewal", toolPath), `--directory=${spoolDir}`, `--slot=${slot}`, "--no-loop", "--verbose", ...args], secretEnv };
}

/** Where the server's WAL is now, on which timeline, in segments of what size. */
export interface WalPosition {
  lsn: string;
  position: number;
  timeline: number;
  segmentSize: number;
}

export interface SlotStatus {
  current: number;
  /** Null when the slot does not exist (or holds no WAL yet). */
  restartLsn: number | null;
  walStatus: string | null;
  /** `max_slot_wal_keep_size` in MB; -1 is unlimited. */
  maxKeepMb: number;
}

async function query<T>(target: SourceTarget, text: string, params: unknown[], timeoutSeconds = 15): Promise<T[]> {
  const sql = new SQL(connectionOptions(target, target.database ?? undefined, target.options.connectTimeoutSeconds ?? timeoutSeconds));
  try {
    return [...((await sql.unsafe(text, params)) as T[])];
  } finally {
    await sql.close({ timeout: 0 }).catch(() => {});
  }
}

/** The server's current WAL position (a plain connection to the source's database; primaries only). */
export async function walPosition(target: SourceTarget): Promise<WalPosition> {
  const [row] = await query<{ lsn: string; file: string; seg: string }>(
    target,
    "SELECT pg_current_wal_lsn()::text AS lsn, pg_walfile_name(pg_current_wal_lsn()) AS file, (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS seg",
    [],
  );
  const segmentSize = Number(row?.seg);
  const position = parseLsn(row?.lsn ?? "");
  const file = parseSegmentName(row?.file ?? "", segmentSize);
  if (!row || position === null || !file || !(segmentSize > 0)) throw new Error("the server did not report its WAL position");
  return { lsn: row.lsn, position, timeline: file.timeline, segmentSize };
}

/** What ensureReservedSlot found: the slot as it was, or made again (with what the server said of the old one). */
export type SlotCheck = { recreated: false } | { recreated: true; walStatus: string | null };

/**
 * Creates the physical slot unless it exists, reserving WAL at once: from then on the server
 * keeps every segment from here until a client streams it. (`pg_receivewal --create-slot`
 * does not reserve: its slot holds nothing until pg_receivewal first connects.) A slot left
 * without a reservation is made again, unless in use: snapdb creates its slots reserved, so
 * that is one the server gave up (`wal_status` `lost`: it passed max_slot_wal_keep_size) or
 * one made by hand; either way WAL the archive did not have is gone, which the caller says.
 * Needs the REPLICATION attribute, like the tools.
 */
export async function ensureReservedSlot(target: SourceTarget, slot: string): Promise<SlotCheck> {
  const [found] = await query<{ reserved: boolean; active: boolean; wal_status: string | null }>(
    target,
    "SELECT restart_lsn IS NOT NULL AS reserved, active, wal_status FROM pg_replication_slots WHERE slot_name = $1",
    [slot],
  );
  if (found?.reserved || found?.active) return { recreated: false };
  if (found) await query(target, "SELECT pg_drop_replication_slot($1)", [slot]);
  try {
    await query(target, "SELECT pg_create_physical_replication_slot($1, true)", [slot]);
  } catch (err) {
    // Created meanwhile by the archiver or a backup job: that one reserves too.
    if ((err as { errno?: string }).errno !== "42710") throw err;
  }
  return found ? { recreated: true, walStatus: found.wal_status } : { recreated: false };
}

export async function dropSlot(target: SourceTarget, slot: string): Promise<void> {
  await query(target, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", [slot]);
}

/** What physical backups need of the server and the role, as the server reports it. */
export interface PhysicalReadiness {
  replication: boolean;
  superuser: boolean;
  walLevel: string;
  maxKeepMb: number;
  maxWalSenders: number;
}

export async function physicalReadiness(target: SourceTarget): Promise<PhysicalReadiness> {
  const [row] = await query<{ replication: boolean; superuser: boolean; wal_level: string; keep: string; senders: string }>(
    target,
    "SELECT r.rolreplication AS replication, r.rolsuper AS superuser, current_setting('wal_level') AS wal_level, " +
      "current_setting('max_slot_wal_keep_size') AS keep, current_setting('max_wal_senders') AS senders FROM pg_roles r WHERE r.rolname = current_user",
    [],
  );
  return {
    replication: !!row?.replication,
    superuser: !!row?.superuser,
    walLevel: row?.wal_level ?? "",
    maxKeepMb: keepMb(row?.keep ?? "-1"),
    maxWalSenders: Number(row?.senders ?? 0),
  };
}

/** `max_slot_wal_keep_size` as MB; -1 is unlimited. */
function keepMb(text: string): number {
  const keep = /^(-?\d+)\s*(kB|MB|GB|TB)?$/.exec(text);
  const unit = { kB: 1 / 1024, MB: 1, GB: 1024, TB: 1024 * 1024 }[keep?.[2] ?? "MB"] ?? 1;
  const value = Number(keep?.[1] ?? -1);
  return value < 0 ? -1 : value * unit;
}

/** The slot's retained WAL and the server's cap on it. */
export async function slotStatus(target: SourceTarget, slot: string): Promise<SlotStatus> {
  const [row] = await query<{ current: string; restart: string | null; status: string | null; keep: string }>(
    target,
    "SELECT pg_current_wal_lsn()::text AS current, s.restart_lsn::text AS restart, s.wal_status AS status, current_setting('max_slot_wal_keep_size') AS keep " +
      "FROM (SELECT 1) one LEFT JOIN pg_replication_slots s ON s.slot_name = $1",
    [slot],
  );
  return {
    current: parseLsn(row?.current ?? "") ?? 0,
    restartLsn: row?.restart ? parseLsn(row.restart) : null,
    walStatus: row?.status ?? null,
    maxKeepMb: keepMb(row?.keep ?? "-1"),
  };
}
