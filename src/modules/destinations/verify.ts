import { randomBytes, timingSafeEqual } from "node:crypto";
import { eq } from "drizzle-orm";
import { recordAudit } from "../../audit/record.ts";
import { storageDestinations } from "../../db/schema.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { nowIso } from "../../lib/clock.ts";
import { ulid } from "../../lib/ids.ts";
import { outboundErrorOf } from "../../net/outbound-policy.ts";
import type { StorageFailureCode } from "../../lib/failure-codes.ts";
import { StorageError, storageFailureCode } from "../../storage/errors.ts";
import { probeKey } from "../../storage/keys.ts";
import type { StorageRegistry } from "../../storage/registry.ts";
import { findDestination } from "./service.ts";

export interface VerifyResult {
  ok: boolean;
  latencyMs?: number;
  error?: { code: StorageFailureCode; message: string };
}

export const VERIFY_TIMEOUT_MS = 30_000;

async function readAll(stream: ReadableStream<Uint8Array>, limit: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > limit) throw new StorageError("STORAGE_ERROR", "the probe object read back is larger than written");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Write, read back and delete a small probe object under the org's prefix. */
async function probe(registry: StorageRegistry, row: Parameters<StorageRegistry["driverFor"]>[0], signal: AbortSignal): Promise<void> {
  const driver = registry.driverFor(row);
  const key = probeKey(registry.keyPrefixFor(row), row.orgId, ulid());
  const payload = randomBytes(64);
  await driver.put(key, new Blob([payload]).stream(), { signal, contentType: "application/octet-stream" });
  try {
    const back = await driver.get(key);
    const bytes = await readAll(back.body, payload.length);
    if (bytes.length !== payload.length || !timingSafeEqual(bytes, payload)) {
      throw new StorageError("STORAGE_ERROR", "the probe object read back differs from what was written");
    }
  } finally {
    await driver.delete(key).catch(() => {});
  }
}

function toOutcomeError(err: unknown): { code: StorageFailureCode; message: string } {
  // Refused by the outbound policy: worded like any endpoint that cannot be reached (verify
  // does not tell a tenant which addresses the operator fenced off; job errors do).
  if (outboundErrorOf(err)?.kind === "denied") return { code: "STORAGE_UNREACHABLE", message: "the storage endpoint is unreachable" };
  if (err instanceof StorageError) {
    return { code: storageFailureCode(err.code), message: err.message };
  }
  return { code: "STORAGE_ERROR", message: "the storage check failed unexpectedly" };
}

/** `POST /storage-destinations/{id}/verify`: the outcome is stored as `lastVerify` and audited. */
export async function verifyDestination(ctx: ServiceContext, id: string, registry: StorageRegistry): Promise<VerifyResult> {
  const row = await findDestination(ctx.db, ctx.orgId, id);
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), VERIFY_TIMEOUT_MS);
  let result: VerifyResult;
  try {
    await Promise.race([
      probe(registry, row, controller.signal),
      new Promise<never>((_, reject) =>
        controller.signal.addEventListener("abort", () => reject(new StorageError("STORAGE_UNREACHABLE", `the storage did not answer within ${VERIFY_TIMEOUT_MS / 1000} s`))),
      ),
    ]);
    result = { ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (err) {
    result = { ok: false, error: toOutcomeError(err) };
  } finally {
    clearTimeout(timer);
  }
  await ctx.db.transaction(async (tx) => {
    await tx
      .update(storageDestinations)
      .set({ lastVerify: { ...result, at: nowIso() } })
      .where(eq(storageDestinations.id, row.id));
    await recordAudit(tx, ctx, {
      action: "storage_destination.verified",
      targetType: "storage_destination",
      targetId: row.id,
      metadata: { ok: result.ok, latencyMs: result.latencyMs ?? null, errorCode: result.error?.code ?? null },
    });
  });
  return result;
}
