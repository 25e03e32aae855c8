import { and, eq } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import type { SecretBox } from "../../crypto/secrets.ts";
import { dataSources } from "../../db/schema.ts";
import { engineFor } from "../../engines/registry.ts";
import type { EngineEnv } from "../../engines/types.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { nowIso } from "../../lib/clock.ts";
import { notFound } from "../../lib/errors.ts";
import { targetOf } from "./credentials.ts";
import { findDataSource } from "./service.ts";

/**
 * Connects to the source for real, checks its dump tool, stores the outcome as `lastVerify`
 * and audits it. A failed check is a 200 with `ok: false`: the request itself worked.
 */
export async function verifyDataSource(ctx: ServiceContext, secrets: SecretBox, env: EngineEnv, id: string) {
  const row = findDataSource(ctx.db, ctx.orgId, id);
  const target = targetOf(row, secrets);
  const timeoutMs = target.options.connectTimeoutSeconds ? target.options.connectTimeoutSeconds * 1000 : env.timeoutMs;
  const result = await engineFor(row.engine).verify(target, { ...env, timeoutMs });
  const outcome = { ...result, verifiedAt: nowIso() };
  ctx.db.transaction((tx) => {
    const changed = tx
      .update(dataSources)
      .set({ lastVerify: outcome as Record<string, unknown> })
      .where(and(eq(dataSources.id, id), eq(dataSources.orgId, ctx.orgId)))
      .run();
    // Deleted while we were connecting: nothing left to record the outcome on.
    if ((changed as unknown as { changes: number }).changes === 0) throw notFound("data source");
    recordAudit(tx, ctx, {
      action: "data_source.verified",
      targetType: "data_source",
      targetId: id,
      metadata: result.ok
        ? { ok: true, latencyMs: result.latencyMs, serverVersion: result.serverVersion }
        : { ok: false, code: result.error.code, message: result.error.message },
    });
  });
  return outcome;
}
