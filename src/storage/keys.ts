import { StorageError } from "./errors.ts";

/**
 * Object keys of backup files (docs/architecture.md, "Backup file format"):
 * `{prefix}/{orgId}/{dataSourceId}/{YYYY}/{MM}/{DD}/{jobId}.{ext}`; an empty prefix is
 * left out. The date is UTC, so a key never depends on the daemon's time zone.
 */
export interface BackupKeyParts {
  prefix: string;
  orgId: string;
  dataSourceId: string;
  jobId: string;
  /** The layers, without the leading dot: `dump.zst.age`, `sql.zst`, `sqlite.zst`. */
  ext: string;
  at: Date;
  /**
   * A whole-server job's part (`globals`, `db-<name>`): its file goes into the job's folder,
   * `…/{DD}/{jobId}/{part}.{ext}`.
   */
  part?: string;
}

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function segment(value: string, what: string): string {
  if (!SAFE_SEGMENT.test(value) || value.includes("..")) {
    throw new StorageError("INVALID_KEY", `${what} is not usable in an object key`);
  }
  return value;
}

/** The prefix without leading/trailing slashes; each of its segments checked. */
export function normalizePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, "");
  if (trimmed === "") return "";
  return trimmed
    .split("/")
    .map((s) => segment(s, "prefix"))
    .join("/");
}

/**
 * Org ids come from tokens and may hold any character; one that is not a safe key segment
 * is written as `o-` + base64url, so it can neither escape its prefix nor collide.
 */
export function orgSegment(orgId: string): string {
  if (SAFE_SEGMENT.test(orgId) && !orgId.includes("..") && !orgId.startsWith("o-")) return orgId;
  return `o-${Buffer.from(orgId, "utf8").toString("base64url")}`;
}

export function joinKey(...parts: string[]): string {
  return parts.filter((p) => p !== "").join("/");
}

export function backupObjectKey(p: BackupKeyParts): string {
  const yyyy = String(p.at.getUTCFullYear()).padStart(4, "0");
  const mm = String(p.at.getUTCMonth() + 1).padStart(2, "0");
  const dd = String(p.at.getUTCDate()).padStart(2, "0");
  const ext = p.ext.replace(/^\./, "");
  const day = joinKey(normalizePrefix(p.prefix), orgSegment(p.orgId), segment(p.dataSourceId, "dataSourceId"), yyyy, mm, dd);
  if (p.part !== undefined) return joinKey(day, segment(p.jobId, "jobId"), `${segment(p.part, "part")}.${segment(ext, "ext")}`);
  return joinKey(day, `${segment(p.jobId, "jobId")}.${segment(ext, "ext")}`);
}

/**
 * A key ending in `/` is a folder, never an object: a whole-server job's `objectKey` names
 * the folder its parts are in (`…/{jobId}/`).
 */
export const isFolderKey = (key: string) => key.endsWith("/");

/** The folder a part's key is in (`…/{jobId}/`). */
export const folderOf = (partKey: string) => partKey.slice(0, partKey.lastIndexOf("/") + 1);

/**
 * An archived WAL file of a PostgreSQL source (physical policies):
 * `{prefix}/{orgId}/{dataSourceId}/wal/{name}.{ext}`, e.g. `…/wal/000000010000000000000003.zst.age`;
 * `name` is PostgreSQL's own file name (a segment or a timeline history file).
 */
export function walObjectKey(p: { prefix: string; orgId: string; dataSourceId: string; name: string; ext: string }): string {
  const ext = p.ext.replace(/^\./, "");
  const file = ext ? `${segment(p.name, "WAL file name")}.${segment(ext, "ext")}` : segment(p.name, "WAL file name");
  return joinKey(normalizePrefix(p.prefix), orgSegment(p.orgId), segment(p.dataSourceId, "dataSourceId"), "wal", file);
}

/** Where one org's data source's backups live, for listing them (`{prefix}/{orgId}/{dataSourceId}/`). */
export function dataSourceKeyPrefix(prefix: string, orgId: string, dataSourceId: string): string {
  return `${joinKey(normalizePrefix(prefix), orgSegment(orgId), segment(dataSourceId, "dataSourceId"))}/`;
}

/** A key for the verify probe object of one org. */
export function probeKey(prefix: string, orgId: string, nonce: string): string {
  return joinKey(normalizePrefix(prefix), orgSegment(orgId), ".snapdb-verify", segment(nonce, "nonce"));
}
