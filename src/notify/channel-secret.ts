import type { SecretBox } from "../crypto/secrets.ts";

/**
 * The two halves of a channel's config. `settings` is stored and shown as is; `secret` is
 * sealed under the master key and never leaves the daemon except towards the receiver.
 */
export interface ChannelSettings {
  /** webhook, ntfy: the URL posted to (not secret: shown). */
  url?: string;
  /** ntfy */
  topic?: string;
  /** email */
  to?: string[];
  from?: string;
  subjectPrefix?: string;
  /** slack, discord, teams: the host of the (secret) webhook URL, to tell channels apart. */
  webhookHost?: string;
  /** Which fields of the sealed secret are set (answers show `hasSecret`, `hasToken`, …). */
  secretFields?: (keyof ChannelSecret)[];
}

export interface ChannelSecret {
  /** webhook: the HMAC key of X-Snapdb-Signature */
  secret?: string;
  /** slack, discord, teams: whoever has the URL can post to the chat */
  webhookUrl?: string;
  /** ntfy: an access token (Authorization: Bearer) */
  token?: string;
}

/** Binds a ciphertext to its channel: copied onto another row it does not decrypt. */
export const channelSecretAad = (id: string) => `notification_channel:${id}:secret`;

export function sealChannelSecret(box: SecretBox, id: string, secret: ChannelSecret): { secretCiphertext: string | null; secretKeyId: string | null } {
  if (!Object.values(secret).some((v) => v !== undefined)) return { secretCiphertext: null, secretKeyId: null };
  const sealed = box.seal(JSON.stringify(secret), channelSecretAad(id));
  return { secretCiphertext: sealed.ciphertext, secretKeyId: sealed.keyId };
}

export function openChannelSecret(box: SecretBox, row: { id: string; secretCiphertext: string | null; secretKeyId: string | null }): ChannelSecret {
  if (!row.secretCiphertext || !row.secretKeyId) return {};
  return JSON.parse(box.open({ ciphertext: row.secretCiphertext, keyId: row.secretKeyId }, channelSecretAad(row.id))) as ChannelSecret;
}
