import type { Config } from "../config/schema.ts";
import type { SecretBox } from "../crypto/secrets.ts";
import type { Db } from "../db/client.ts";
import type { storageDestinations } from "../db/schema.ts";
import { assumeRoleProvider } from "./assume-role.ts";
import { deleteBackupObjects } from "./backup-objects.ts";
import { DownloadTokens } from "./download-token.ts";
import { StorageError } from "./errors.ts";
import { externalIdFor } from "./external-id.ts";
import { backupObjectKey, normalizePrefix, walObjectKey, type BackupKeyParts } from "./keys.ts";
import { LocalDriver } from "./local.ts";
import { checkLocalRoot } from "./local-paths.ts";
import { OutboundError, OutboundPolicy } from "../net/outbound-policy.ts";
import { S3Driver, type S3DriverOptions } from "./s3.ts";
import type { StorageDriver } from "./types.ts";

export type DestinationRow = typeof storageDestinations.$inferSelect;

/** Non-secret settings of an `s3` row (the secret half is sealed in `secret_ciphertext`). */
export interface S3Settings {
  /** The tenant's S3 endpoint: gets requests signed with the tenant's keys or the assumed role only. */
  endpoint: string;
  region: string;
  bucket: string;
  prefix: string;
  forcePathStyle: boolean;
  auth: { type: "accessKey"; accessKeyId: string } | { type: "assumeRole"; roleArn: string };
}

export interface LocalSettings {
  path: string;
}

/**
 * The sealed half: `secretAccessKey` (accessKey auth). assumeRole has none: its ExternalId is
 * snapdb's (external-id.ts); rows written before that may still hold a tenant's, never used.
 */
export type DestinationSecret = { secretAccessKey: string } | { externalId: string };

export const secretAad = (destinationId: string) => `storage_destination:${destinationId}:secret`;

export interface StorageDeps {
  config: Config;
  /** For the org's ExternalId (assumeRole). */
  db: Db;
  secrets: SecretBox;
  downloadTokens: DownloadTokens;
  /** What download links of local destinations start with, e.g. `https://backup.example.com`. */
  publicBaseUrl: string;
  /** Multipart tuning (tests use S3's 5 MiB minimum). */
  s3?: { partSize?: number; queueSize?: number };
}

/**
 * Turns destination rows into drivers, for the API (verify), the runner (put/get) and
 * cascade deletes. Drivers are cached per destination and rebuilt when the row changes
 * (`updatedAt`), so assumed-role credentials are reused across jobs until near expiry.
 */
export class StorageRegistry {
  private readonly cache = new Map<string, { version: string; driver: StorageDriver }>();
  /** Tenant S3 endpoints only: the operator's managed storage is trusted config. */
  private readonly outbound: OutboundPolicy;

  constructor(readonly deps: StorageDeps) {
    this.outbound = OutboundPolicy.fromConfig(deps.config.network);
  }

  openSecret(row: DestinationRow): DestinationSecret | null {
    if (!row.secretCiphertext || !row.secretKeyId) return null;
    return JSON.parse(this.deps.secrets.open({ ciphertext: row.secretCiphertext, keyId: row.secretKeyId }, secretAad(row.id)));
  }

  driverFor(row: DestinationRow): StorageDriver {
    const version = `${row.updatedAt}:${row.secretCiphertext ?? ""}`;
    const hit = this.cache.get(row.id);
    if (hit && hit.version === version) return hit.driver;
    hit?.driver.close();
    const driver = this.build(row);
    this.cache.set(row.id, { version, driver });
    return driver;
  }

  /** Forget a destination's driver (after delete). */
  evict(destinationId: string): void {
    this.cache.get(destinationId)?.driver.close();
    this.cache.delete(destinationId);
  }

  /** The key prefix a destination's objects go under (before `{orgId}/…`). */
  keyPrefixFor(row: DestinationRow): string {
    if (row.kind === "s3") return normalizePrefix((row.settings as unknown as S3Settings).prefix ?? "");
    if (row.kind === "managed" && this.deps.config.managedStorage.type === "s3") {
      return normalizePrefix(this.deps.config.managedStorage.prefix);
    }
    return "";
  }

  /** The object key of a backup file on this destination (docs/architecture.md, "Backup file format"). */
  objectKeyFor(row: DestinationRow, parts: Omit<BackupKeyParts, "prefix" | "orgId">): string {
    return backupObjectKey({ ...parts, prefix: this.keyPrefixFor(row), orgId: row.orgId });
  }

  /** The object key of an archived WAL file on this destination. */
  walObjectKeyFor(row: DestinationRow, parts: { dataSourceId: string; name: string; ext: string }): string {
    return walObjectKey({ ...parts, prefix: this.keyPrefixFor(row), orgId: row.orgId });
  }

  private localDriver(row: DestinationRow, root: string, allowedRoots?: readonly string[]): LocalDriver {
    return new LocalDriver({
      root,
      allowedRoots,
      download: { destinationId: row.id, tokens: this.deps.downloadTokens, baseUrl: this.deps.publicBaseUrl },
    });
  }

  private build(row: DestinationRow): StorageDriver {
    const { config } = this.deps;
    if (row.kind === "managed") {
      const m = config.managedStorage;
      if (m.type === "local") return this.localDriver(row, m.path);
      return new S3Driver({
        bucket: m.bucket,
        region: m.region,
        endpoint: m.endpoint,
        forcePathStyle: m.forcePathStyle,
        // Empty keys: the daemon's own AWS identity (environment, instance profile, …).
        credentials: m.accessKeyId ? { accessKeyId: m.accessKeyId, secretAccessKey: m.secretAccessKey } : undefined,
        ...this.deps.s3,
      });
    }
    if (row.kind === "local") {
      const { path } = row.settings as unknown as LocalSettings;
      // Checked here (an operator who removes a root cuts its destinations off) and again by
      // the driver on every operation (the directory may be swapped for a symlink later, or
      // a directory on the way handed to another user).
      const check = checkLocalRoot(path, config.storage.allowedLocalRoots);
      if (!check.ok) {
        throw new StorageError("ACCESS_DENIED", check.outside ? "the directory is no longer under an allowed local root" : `local storage: ${check.reason}`);
      }
      return this.localDriver(row, path, config.storage.allowedLocalRoots);
    }
    const s = row.settings as unknown as S3Settings;
    // A tenant endpoint that is a refused IP literal gets no client at all.
    if (s.endpoint) this.refuseDeniedAddress(s.endpoint);
    let credentials: S3DriverOptions["credentials"];
    if (s.auth.type === "accessKey") {
      const secret = this.openSecret(row);
      if (!secret || !("secretAccessKey" in secret)) throw new StorageError("ACCESS_DENIED", "the destination has no secret access key");
      credentials = { accessKeyId: s.auth.accessKeyId, secretAccessKey: secret.secretAccessKey };
    } else {
      // The daemon's own identity asks for the role, so only the operator's STS may hear it:
      // never `s.endpoint`, nor a `stsEndpoint` or ExternalId that rows of older versions hold.
      const { db, secrets } = this.deps;
      credentials = assumeRoleProvider({
        roleArn: s.auth.roleArn,
        externalId: () => externalIdFor(db, secrets, row.orgId),
        region: s.region,
        endpoint: config.storage.stsEndpoint,
      });
    }
    return new S3Driver({
      bucket: s.bucket,
      region: s.region,
      endpoint: s.endpoint,
      forcePathStyle: s.forcePathStyle,
      credentials,
      outbound: this.outbound,
      ...this.deps.s3,
    });
  }

  private refuseDeniedAddress(url: string): void {
    try {
      this.outbound.checkUrl(url);
    } catch (err) {
      if (err instanceof OutboundError) throw new StorageError("STORAGE_UNREACHABLE", `S3: the storage endpoint is unreachable: ${err.message}`, { cause: err });
      throw err;
    }
  }

  close(): void {
    for (const { driver } of this.cache.values()) driver.close();
    this.cache.clear();
  }
}

/**
 * Deletes one stored backup (an object, or a whole-server job's folder) and swallows every failure (logged by the caller if it wants):
 * for cascades (a data source deleted with its jobs) where a missing or unreachable file
 * must not block the database change. Returns whether the delete went through.
 */
export async function deleteObjectQuietly(registry: StorageRegistry, row: DestinationRow, key: string, onError?: (err: unknown) => void): Promise<boolean> {
  try {
    await deleteBackupObjects(registry.driverFor(row), key);
    return true;
  } catch (err) {
    onError?.(err);
    return false;
  }
}

/** The daemon's registry: download links point at the daemon's own listen address. */
export function storageRegistryFor(config: Config, db: Db, secrets: SecretBox, downloadKey: Uint8Array, extra: Partial<Pick<StorageDeps, "publicBaseUrl" | "s3">> = {}): StorageRegistry {
  return new StorageRegistry({
    config,
    db,
    secrets,
    downloadTokens: new DownloadTokens(downloadKey),
    publicBaseUrl: extra.publicBaseUrl ?? `http://${config.listen}`,
    s3: extra.s3,
  });
}
