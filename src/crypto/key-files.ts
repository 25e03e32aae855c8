import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";

/**
 * A random key kept in a file of its own, mode 0600, created on first use. Creation uses
 * O_EXCL so two processes starting at once (the daemon and `snapdb token`) agree on one key.
 */
export function ensureKeyFile(path: string, bytes = 32): Uint8Array {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    const fd = openSync(path, "wx", 0o600);
    try {
      const key = crypto.getRandomValues(new Uint8Array(bytes));
      writeSync(fd, Buffer.from(key).toString("base64") + "\n");
      return key;
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  return readKeyFile(path, bytes);
}

export function readKeyFile(path: string, bytes = 32): Uint8Array {
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) chmodSync(path, 0o600); // a key readable by others is tightened, not trusted as is
  const key = Buffer.from(readFileSync(path, "utf8").trim(), "base64");
  if (key.length !== bytes) {
    throw new Error(`key file ${path} must hold ${bytes} bytes in base64 (found ${key.length})`);
  }
  return new Uint8Array(key);
}
