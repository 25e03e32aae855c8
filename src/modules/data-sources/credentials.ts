import { eq } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import { SecretDecryptError, type SecretBox } from "../../crypto/secrets.ts";
import { dataSources } from "../../db/schema.ts";
import type { SourceTarget } from "../../engines/types.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { nowMs } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import { findDataSource } from "./service.ts";
import type { DataSourceRow } from "./serialize.ts";

/** Binds a credentials ciphertext to its row: copied onto another row it does not decrypt. */
export const credentialsAad = (id: string) => `data_source:${id}:credentials`;

/** Stores the password sealed under the master key; the username stays readable (it is shown). */
export async function setCredentials(ctx: ServiceContext, secrets: SecretBox, id: string, input: { username: string; password: string }) {
  await ctx.db.transaction(async (tx) => {
    await findDataSource(tx, ctx.orgId, id);
    const sealed = secrets.seal(input.password, credentialsAad(id));
    const now = nowMs();
    await tx
      .update(dataSources)
      .set({
        credentialsUsername: input.username,
        credentialsCiphertext: sealed.ciphertext,
        credentialsKeyId: sealed.keyId,
        credentialsUpdatedAt: now,
        updatedAt: now,
      })
      .where(eq(dataSources.id, id));
    await recordAudit(tx, ctx, { action: "data_source.credentials_set", targetType: "data_source", targetId: id, metadata: { username: input.username } });
  });
}

/** Forgets the credentials (idempotent: 204 also when none were set). */
export async function deleteCredentials(ctx: ServiceContext, id: string) {
  await ctx.db.transaction(async (tx) => {
    await findDataSource(tx, ctx.orgId, id);
    await tx.update(dataSources).set({ credentialsUsername: null, credentialsCiphertext: null, credentialsKeyId: null, credentialsUpdatedAt: null, updatedAt: nowMs() }).where(eq(dataSources.id, id));
    await recordAudit(tx, ctx, { action: "data_source.credentials_deleted", targetType: "data_source", targetId: id });
  });
}

/**
 * What an engine needs to reach the source, with the password decrypted for this call only.
 * Used by verify now and by the backup runner later.
 */
export function targetOf(row: DataSourceRow, secrets: SecretBox): SourceTarget {
  let credentials: SourceTarget["credentials"] = null;
  if (row.credentialsUsername !== null && row.credentialsCiphertext !== null && row.credentialsKeyId !== null) {
    try {
      const password = secrets.open({ ciphertext: row.credentialsCiphertext, keyId: row.credentialsKeyId }, credentialsAad(row.id));
      credentials = { username: row.credentialsUsername, password };
    } catch (err) {
      if (err instanceof SecretDecryptError) {
        throw new AppError("INTERNAL", `the credentials of data source ${row.id} cannot be decrypted with the loaded master key: ${err.message}`);
      }
      throw err;
    }
  }
  return {
    engine: row.engine,
    host: row.host,
    port: row.port,
    database: row.database,
    path: row.path,
    options: row.options as SourceTarget["options"],
    credentials,
    excludeDatabases: row.excludeDatabases ?? [],
  };
}
