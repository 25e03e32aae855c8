import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** The id stored beside each ciphertext: which master key sealed it (for rotation). */
export function keyIdOf(key: Uint8Array): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

export interface Sealed {
  /** base64 of nonce(12) ‖ ciphertext ‖ tag(16) */
  ciphertext: string;
  keyId: string;
}

export class SecretDecryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SecretDecryptError";
  }
}

/**
 * Secrets at rest (data source credentials, storage keys): AES-256-GCM under the master
 * key. `aad` binds a ciphertext to its row and purpose, e.g. `data_source:ds_…:credentials`,
 * so a ciphertext copied onto another row does not decrypt there. Older keys may be
 * given so values sealed before a rotation still open.
 */
export class SecretBox {
  readonly keyId: string;
  private readonly keys = new Map<string, Uint8Array>();

  constructor(
    private readonly current: Uint8Array,
    older: Uint8Array[] = [],
  ) {
    if (current.length !== 32) throw new Error("the master key must be 32 bytes");
    this.keyId = keyIdOf(current);
    for (const k of [current, ...older]) this.keys.set(keyIdOf(k), k);
  }

  seal(plaintext: string, aad: string): Sealed {
    const nonce = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.current, nonce);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return { ciphertext: Buffer.concat([nonce, body, cipher.getAuthTag()]).toString("base64"), keyId: this.keyId };
  }

  open(sealed: Sealed, aad: string): string {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new SecretDecryptError(`secret was sealed with master key ${sealed.keyId}, which is not loaded`);
    const raw = Buffer.from(sealed.ciphertext, "base64");
    if (raw.length < 28) throw new SecretDecryptError("secret ciphertext is truncated");
    const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    try {
      return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString("utf8");
    } catch {
      throw new SecretDecryptError("secret does not decrypt under its master key (tampered or wrong key)");
    }
  }
}
