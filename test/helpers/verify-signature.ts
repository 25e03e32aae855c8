// The receiver side of X-Snapdb-Signature, exactly as the README shows it (a test checks
// that the README holds these lines), used by the tests' real receivers.
// README snippet start
import { createHmac, timingSafeEqual } from "node:crypto";

/** True when `header` (X-Snapdb-Signature) signs `rawBody` with `secret` and is at most 5 minutes old. */
export function verifySnapdbSignature(secret: string, header: string, rawBody: string, maxAgeSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=", 2)));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > maxAgeSeconds || !/^[0-9a-f]{64}$/.test(parts.v1 ?? "")) return false;
  const expected = createHmac("sha256", secret).update(`${parts.t}.${rawBody}`).digest();
  return timingSafeEqual(expected, Buffer.from(parts.v1, "hex"));
}
// README snippet end
