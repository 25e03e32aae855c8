import { and, eq } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { SecretBox } from "../../crypto/secrets.ts";
import { dataSources } from "../../db/schema.ts";
import { engineFor } from "../../engines/registry.ts";
import { pinSqlitePath, type SqlitePathPolicy } from "../../engines/sqlite-path.ts";
import { isWholeServer } from "../../engines/whole-server.ts";
import { verifyWholeServer } from "../../engines/whole-server-verify.ts";
import { verifyFailure, type EngineEnv, type SourceTarget, type VerifyResult } from "../../engines/types.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { nowIso } from "../../lib/clock.ts";
import { notFound } from "../../lib/errors.ts";
import { targetOf } from "./credentials.ts";
import { hasPhysicalPolicy, physicalWarnings } from "./physical-checks.ts";
import { findDataSource } from "./service.ts";

/** A SQLite file is opened only at the real path the host boundary allows, now. */
async function probe(target: SourceTarget, env: EngineEnv, sqlitePaths: SqlitePathPolicy, orgId: string): Promise<VerifyResult> {
  if (target.engine === "sqlite") {
    const pinned = pinSqlitePath(target.path ?? "", sqlitePaths, orgId);
    if (!pinned.ok) return verifyFailure(pinned.missing ? "DATABASE_NOT_FOUND" : "PATH_NOT_ALLOWED", pinned.reason);
    using pin = pinned.pin;
    return await engineFor("sqlite").verify({ ...target, path: pin.real }, env);
  }
  const timeoutMs = target.options.connectTimeoutSeconds ? target.options.connectTimeoutSeconds * 1000 : env.timeoutMs;
  if (isWholeServer(target)) return verifyWholeServer(target, { ...env, timeoutMs });
  return engineFor(target.engine).verify(target, { ...env, timeoutMs });
}

/**
 * Connects to the source for real, checks its dump tool, stores the outcome as `lastVerify`
 * and audits it. A failed check is a 200 with `ok: false`: the request itself worked.
 */
export async function verifyDataSource(ctx: ServiceContext, secrets: SecretBox, env: EngineEnv, sqlitePaths: SqlitePathPolicy, id: string) {
  const row = await findDataSource(ctx.db, ctx.orgId, id);
  const target = targetOf(row, secrets);
  const result = await probe(target, env, sqlitePaths, ctx.orgId);
  // A physical policy needs more than a dump's login: said as warnings when the login works.
  const warnings = result.ok && row.engine === "postgres" && (await hasPhysicalPolicy(ctx.db, id)) ? await physicalWarnings(target, env) : [];
  const outcome = { ...result, ...(warnings.length ? { warnings } : {}), verifiedAt: nowIso() };
  await ctx.db.transaction(async (tx) => {
    const changed = await tx
      .update(dataSources)
      .set({ lastVerify: outcome as Record<string, unknown> })
      .where(and(eq(dataSources.id, id), eq(dataSources.orgId, ctx.orgId)))
      .returning({ id: dataSources.id });
    // Deleted while we were connecting: nothing left to record the outcome on.
    if (changed.length === 0) throw notFound("data source");
    await recordAudit(tx, ctx, {
      action: "data_source.verified",
      targetType: "data_source",
      targetId: id,
      metadata: result.ok
        ? { ok: true, latencyMs: result.latencyMs, serverVersion: result.serverVersion, ...(warnings.length ? { warnings } : {}) }
        : { ok: false, code: result.error.code, message: result.error.message },
    });
  });
  return outcome;
}
