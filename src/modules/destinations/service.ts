import { and, desc, eq, isNotNull, isNull, lt, type SQL } from "drizzle-orm";
import type { Config } from "../../config/schema.ts";
import type { SecretBox } from "../../crypto/secrets.ts";
import { recordAudit } from "../../audit/record.ts";
import { backupJobs, backupPolicies, storageDestinations } from "../../db/schema.ts";
import type { Tx } from "../../db/client.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { isoOf, nowMs } from "../../lib/clock.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { newId } from "../../lib/ids.ts";
import { takePage, type PageRequest } from "../../lib/page.ts";
import { externalIdFor } from "../../storage/external-id.ts";
import { secretAad, type DestinationRow, type DestinationSecret, type LocalSettings, type S3Settings } from "../../storage/registry.ts";
import { isUniqueViolation } from "../../db/unique-violation.ts";
import type { StorageFailureCode } from "../../lib/failure-codes.ts";
import { checkAuth, checkLocalPath, checkName, checkS3, defaultName, rejectForeignFields, type FieldsInput } from "./validate.ts";

export interface DestinationDeps {
  config: Config;
  secrets: SecretBox;
}

export interface CreateInput extends FieldsInput {
  kind: "s3" | "local";
}

/**
 * The API shape of a row: settings spread out, secrets left out. `externalId` is the org's
 * (external-id.ts), shown on assumeRole destinations; a `stsEndpoint` or sealed ExternalId
 * that rows of older versions hold is neither shown nor used.
 */
export function toDestination(row: DestinationRow, config: Config, externalId?: string) {
  const base = { id: row.id, kind: row.kind, name: row.name };
  const tail = {
    lastVerify: (row.lastVerify ?? null) as { ok: boolean; latencyMs?: number; error?: { code: StorageFailureCode; message: string }; at: string } | null,
    createdAt: isoOf(row.createdAt),
    updatedAt: isoOf(row.updatedAt),
  };
  if (row.kind === "managed") return { ...base, managed: { backend: config.managedStorage.type }, ...tail };
  if (row.kind === "local") return { ...base, path: (row.settings as unknown as LocalSettings).path, ...tail };
  const s = row.settings as unknown as S3Settings;
  return {
    ...base,
    endpoint: s.endpoint,
    region: s.region,
    bucket: s.bucket,
    prefix: s.prefix,
    forcePathStyle: s.forcePathStyle,
    auth: s.auth.type === "accessKey" ? { type: s.auth.type, accessKeyId: s.auth.accessKeyId } : { type: s.auth.type, roleArn: s.auth.roleArn, ...(externalId ? { externalId } : {}) },
    ...tail,
  };
}

export type Destination = ReturnType<typeof toDestination>;

const assumesRole = (row: DestinationRow) => row.kind === "s3" && (row.settings as unknown as S3Settings).auth?.type === "assumeRole";

/** Rows as answers; the org's ExternalId is looked up (and its key made) only when one assumes a role. */
async function present(ctx: ServiceContext, rows: DestinationRow[], deps: DestinationDeps): Promise<Destination[]> {
  const externalId = rows.some(assumesRole) ? await externalIdFor(ctx.db, deps.secrets, ctx.orgId) : undefined;
  return rows.map((row) => toDestination(row, deps.config, externalId));
}

const presentOne = async (ctx: ServiceContext, row: DestinationRow, deps: DestinationDeps) => (await present(ctx, [row], deps))[0]!;

/** `GET /storage-destinations/assume-role-info`: what a tenant writes into its role's trust policy. */
export async function assumeRoleInfo(ctx: ServiceContext, deps: DestinationDeps): Promise<{ externalId: string; stsEndpoint?: string }> {
  const externalId = await externalIdFor(ctx.db, deps.secrets, ctx.orgId);
  const { stsEndpoint } = deps.config.storage;
  return stsEndpoint ? { externalId, stsEndpoint } : { externalId };
}

const nameTaken = (name: string) => new AppError("CONFLICT", `a storage destination named ${JSON.stringify(name)} already exists`, [{ path: "/name", message: "already taken in this organisation" }]);

const NAME_COLUMNS = "storage_destinations.org_id, storage_destinations.name";

function seal(deps: DestinationDeps, id: string, secret: DestinationSecret) {
  const sealed = deps.secrets.seal(JSON.stringify(secret), secretAad(id));
  return { secretCiphertext: sealed.ciphertext, secretKeyId: sealed.keyId };
}

/** Non-secret audit metadata of a destination. */
function auditView(row: Pick<DestinationRow, "kind" | "name" | "settings">) {
  return { kind: row.kind, name: row.name, settings: row.settings };
}

export async function findDestination(tx: Tx | ServiceContext["db"], orgId: string, id: string): Promise<DestinationRow> {
  const row = (
    await tx
      .select()
      .from(storageDestinations)
      .where(and(eq(storageDestinations.orgId, orgId), eq(storageDestinations.id, id)))
  )[0];
  if (!row) throw notFound("storage destination");
  return row;
}

export async function createDestination(ctx: ServiceContext, input: CreateInput, deps: DestinationDeps): Promise<Destination> {
  rejectForeignFields(input.kind, input);
  const id = newId("dst");
  let settings: S3Settings | LocalSettings;
  let secret: DestinationSecret | null = null;
  if (input.kind === "s3") {
    if (!input.auth) throw new AppError("INVALID_INPUT", "auth is required", [{ path: "/auth", message: "is required" }]);
    const auth = checkAuth(input.auth, deps.config);
    settings = { ...checkS3(input), auth: auth.settings };
    secret = auth.secret;
  } else {
    if (input.path === undefined) throw new AppError("INVALID_INPUT", "path is required", [{ path: "/path", message: "is required" }]);
    settings = checkLocalPath(input.path, deps.config);
  }
  const name = checkName(input.name ?? defaultName(input.kind, settings));
  const now = nowMs();
  const row: DestinationRow = {
    id,
    orgId: ctx.orgId,
    kind: input.kind,
    name,
    settings: settings as unknown as Record<string, unknown>,
    secretCiphertext: null,
    secretKeyId: null,
    lastVerify: null,
    createdAt: now,
    updatedAt: now,
    ...(secret ? seal(deps, id, secret) : {}),
  };
  try {
    await ctx.db.transaction(async (tx) => {
      await tx.insert(storageDestinations).values(row);
      await recordAudit(tx, ctx, { action: "storage_destination.created", targetType: "storage_destination", targetId: id, metadata: auditView(row) });
    });
  } catch (err) {
    if (isUniqueViolation(err, NAME_COLUMNS)) throw nameTaken(name);
    throw err;
  }
  return presentOne(ctx, row, deps);
}

export async function getDestination(ctx: ServiceContext, id: string, deps: DestinationDeps): Promise<Destination> {
  return presentOne(ctx, await findDestination(ctx.db, ctx.orgId, id), deps);
}

export async function listDestinations(ctx: ServiceContext, filters: { kind?: DestinationRow["kind"] }, page: PageRequest, deps: DestinationDeps) {
  const where: (SQL | undefined)[] = [eq(storageDestinations.orgId, ctx.orgId)];
  if (filters.kind) where.push(eq(storageDestinations.kind, filters.kind));
  if (page.beforeId) where.push(lt(storageDestinations.id, page.beforeId));
  const rows = await ctx.db
    .select()
    .from(storageDestinations)
    .where(and(...where))
    .orderBy(desc(storageDestinations.id))
    .limit(page.limit + 1);
  const { items, hasMore } = takePage(rows, page.limit);
  return { items: await present(ctx, items, deps), hasMore };
}

const managedIsFixed = () => new AppError("CONFLICT", "the managed destination is run by the operator: it can't be changed or deleted");

/** Whether backup files recorded on this destination still exist (their location must not move). */
async function holdsFiles(tx: Tx, id: string): Promise<boolean> {
  return !!(
    await tx
      .select({ id: backupJobs.id })
      .from(backupJobs)
      .where(and(eq(backupJobs.destinationId, id), isNotNull(backupJobs.objectKey), isNull(backupJobs.fileDeletedAt)))
      .limit(1)
  )[0];
}

export async function updateDestination(ctx: ServiceContext, id: string, patch: FieldsInput, deps: DestinationDeps): Promise<Destination> {
  let updated!: DestinationRow;
  try {
    await ctx.db.transaction(async (tx) => {
      const before = await findDestination(tx, ctx.orgId, id);
      if (before.kind === "managed") throw managedIsFixed();
      rejectForeignFields(before.kind, patch);
      let settings = before.settings as unknown as S3Settings | LocalSettings;
      let sealed: { secretCiphertext: string | null; secretKeyId: string | null } | null = null;
      let moves = false;
      if (before.kind === "s3") {
        const prev = settings as S3Settings;
        const next = checkS3(patch, prev);
        if (patch.auth) {
          const auth = checkAuth(patch.auth, deps.config);
          next.auth = auth.settings;
          // A new auth replaces the old secret; assumeRole has none to keep.
          sealed = auth.secret ? seal(deps, id, auth.secret) : { secretCiphertext: null, secretKeyId: null };
        }
        moves = next.bucket !== prev.bucket || next.prefix !== prev.prefix;
        settings = next;
      } else if (patch.path !== undefined) {
        const next = checkLocalPath(patch.path, deps.config);
        moves = next.path !== (settings as LocalSettings).path;
        settings = next;
      }
      // Jobs keep their object keys: moving the location would orphan every stored file.
      if (moves && (await holdsFiles(tx, id))) {
        throw new AppError("CONFLICT", "backup files are stored on this destination: its bucket, prefix or path can't change");
      }
      const name = patch.name !== undefined ? checkName(patch.name) : before.name;
      updated = {
        ...before,
        name,
        settings: settings as unknown as Record<string, unknown>,
        ...(sealed ?? {}),
        updatedAt: Math.max(nowMs(), before.updatedAt + 1),
      };
      await tx
        .update(storageDestinations)
        .set({ name, settings: updated.settings, secretCiphertext: updated.secretCiphertext, secretKeyId: updated.secretKeyId, updatedAt: updated.updatedAt })
        .where(eq(storageDestinations.id, id));
      const changed = Object.keys(patch).filter((k) => k !== "auth");
      await recordAudit(tx, ctx, {
        action: "storage_destination.updated",
        targetType: "storage_destination",
        targetId: id,
        metadata: { changed: patch.auth ? [...changed, "auth"] : changed, ...auditView(updated) },
      });
    });
  } catch (err) {
    if (patch.name !== undefined && isUniqueViolation(err, NAME_COLUMNS)) throw nameTaken(patch.name);
    throw err;
  }
  return presentOne(ctx, updated, deps);
}

export async function deleteDestination(ctx: ServiceContext, id: string): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    const row = await findDestination(tx, ctx.orgId, id);
    if (row.kind === "managed") throw managedIsFixed();
    const policy = (await tx.select({ id: backupPolicies.id, name: backupPolicies.name }).from(backupPolicies).where(eq(backupPolicies.destinationId, id)).limit(1))[0];
    if (policy) {
      throw new AppError("CONFLICT", `the storage destination is used by backup policy ${JSON.stringify(policy.name)} (${policy.id})`);
    }
    await tx.delete(storageDestinations).where(eq(storageDestinations.id, id));
    await recordAudit(tx, ctx, { action: "storage_destination.deleted", targetType: "storage_destination", targetId: id, metadata: auditView(row) });
  });
}

/**
 * The org's managed destination, created on first call. Two racing calls can both miss it;
 * the partial unique index (one managed row per org) makes the second insert fail, and
 * that call then answers with the row the first one made.
 */
export async function ensureManagedDestination(ctx: ServiceContext, config: Config): Promise<{ created: boolean; destination: Destination }> {
  const find = async () =>
    (
      await ctx.db
        .select()
        .from(storageDestinations)
        .where(and(eq(storageDestinations.orgId, ctx.orgId), eq(storageDestinations.kind, "managed")))
    )[0];
  const existing = await find();
  if (existing) return { created: false, destination: toDestination(existing, config) };
  const now = nowMs();
  const row: DestinationRow = {
    id: newId("dst"),
    orgId: ctx.orgId,
    kind: "managed",
    name: "managed",
    settings: {},
    secretCiphertext: null,
    secretKeyId: null,
    lastVerify: null,
    createdAt: now,
    updatedAt: now,
  };
  try {
    await ctx.db.transaction(async (tx) => {
      await tx.insert(storageDestinations).values(row);
      await recordAudit(tx, ctx, {
        action: "storage_destination.created",
        targetType: "storage_destination",
        targetId: row.id,
        metadata: { kind: "managed", name: row.name, backend: config.managedStorage.type },
      });
    });
  } catch (err) {
    const winner = await find();
    if (winner) return { created: false, destination: toDestination(winner, config) };
    throw err;
  }
  return { created: true, destination: toDestination(row, config) };
}
