import { eq } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { orgKeys } from "../db/schema.ts";
import { nowMs } from "../lib/clock.ts";
import { newAgeIdentity } from "./age.ts";
import type { SecretBox } from "./secrets.ts";

const aadOf = (orgId: string) => `org_key:${orgId}:age_identity`;

/**
 * The org's age recipient, creating the org's identity on first use. Two callers racing
 * both generate one, but only the first insert wins and both return the stored one.
 */
export async function ensureOrgRecipient(db: Db, secrets: SecretBox, orgId: string): Promise<string> {
  const existing = (await db.select({ recipient: orgKeys.recipient }).from(orgKeys).where(eq(orgKeys.orgId, orgId)))[0];
  if (existing) return existing.recipient;
  const fresh = await newAgeIdentity();
  const sealed = secrets.seal(fresh.identity, aadOf(orgId));
  await db.insert(orgKeys).values({ orgId, recipient: fresh.recipient, identityCiphertext: sealed.ciphertext, identityKeyId: sealed.keyId, createdAt: nowMs() }).onConflictDoNothing();
  return (await db.select({ recipient: orgKeys.recipient }).from(orgKeys).where(eq(orgKeys.orgId, orgId)))[0]!.recipient;
}

/** The org's age identity (`AGE-SECRET-KEY-1…`), or null if it never encrypted anything. */
export async function orgIdentity(db: Db, secrets: SecretBox, orgId: string): Promise<string | null> {
  const row = (await db.select().from(orgKeys).where(eq(orgKeys.orgId, orgId)))[0];
  if (!row) return null;
  return secrets.open({ ciphertext: row.identityCiphertext, keyId: row.identityKeyId }, aadOf(orgId));
}

/** For master key rotation: the sealed value and its aad, per org. */
export const ORG_KEY_AAD = aadOf;
