/**
 * The age format (age-encryption.org/v1) through typage, the reference TypeScript
 * implementation: a file `age -d -i key.txt` decrypts. X25519 recipients only.
 * typage (and the post-quantum code it brings) is loaded on first use, not at every start.
 */
const typage = () => import("age-encryption");
export const AGE_EXT = ".age";

const RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

export function isAgeRecipient(value: string): boolean {
  return RECIPIENT.test(value);
}

export async function newAgeIdentity(): Promise<{ identity: string; recipient: string }> {
  const { generateX25519Identity, identityToRecipient } = await typage();
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

export async function recipientOf(identity: string): Promise<string> {
  return (await typage()).identityToRecipient(identity);
}

export async function encryptStream(input: ReadableStream<Uint8Array>, recipients: string[]): Promise<ReadableStream<Uint8Array>> {
  if (recipients.length === 0) throw new Error("age encryption needs at least one recipient");
  const e = new (await typage()).Encrypter();
  for (const r of recipients) e.addRecipient(r);
  return e.encrypt(input);
}

/** Decrypts as it reads; a wrong identity fails at the header, a tampered chunk where it is. */
export async function decryptStream(input: ReadableStream<Uint8Array>, identities: string[]): Promise<ReadableStream<Uint8Array>> {
  const d = new (await typage()).Decrypter();
  for (const i of identities) d.addIdentity(i);
  return d.decrypt(input);
}
