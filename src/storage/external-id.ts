import { createHmac } from "node:crypto";
import type { Db } from "../db/client.ts";
import { ensureOrgRecipient, orgIdentity } from "../crypto/org-keys.ts";
import type { SecretBox } from "../crypto/secrets.ts";

/**
 * The ExternalId snapdb sends with every AssumeRole of an organisation. It is snapdb's,
 * never the tenant's: were it chosen by the tenant, one tenant could name another
 * customer's role together with that customer's ExternalId and have the daemon assume it
 * (the confused deputy the ExternalId exists to stop).
 *
 * It must stay the same for as long as the org's trust policies name it, so it is derived
 * from the org's own stored key (`org_keys`, created on first use): `rotate-master-key`
 * re-seals that key without changing it, whereas a value derived from the master key itself
 * would change with every rotation and cut every assumeRole destination off.
 * Not a secret: AWS treats an ExternalId as an identifier, and the tenant writes it into
 * the role's trust policy.
 */
export async function externalIdFor(db: Db, secrets: SecretBox, orgId: string): Promise<string> {
  await ensureOrgRecipient(db, secrets, orgId);
  const key = await orgIdentity(db, secrets, orgId);
  if (!key) throw new Error(`organisation ${orgId} has no key`);
  const mac = createHmac("sha256", key).update(`snapdb/sts-external-id/v1\0${orgId}`).digest("hex");
  return `snapdb-${mac.slice(0, 32)}`;
}
