import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FormatRegistry, Kind } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { hasTransform } from "elysia/schema";
import { BackupJob } from "../../src/modules/jobs/serialize.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

/**
 * Elysia checks every answer against the route's declared response schema. A schema holding a
 * transform (Elysia's `t.Integer`, which also takes numeric strings) makes it run TypeBox's
 * interpreted Encode over the whole answer instead of the compiled check alone: half of a
 * 50-job page's time, and `"12"` would pass for an integer.
 */
let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h?.close());

function responseSchemas(): { route: string; schema: any }[] {
  const out: { route: string; schema: any }[] = [];
  for (const r of (h.app as any).routes as { method: string; path: string; hooks?: { response?: any } }[]) {
    const response = r.hooks?.response;
    if (!response) continue;
    const byStatus = Kind in response ? { 200: response } : response;
    for (const [status, schema] of Object.entries(byStatus)) out.push({ route: `${r.method} ${r.path} ${status}`, schema });
  }
  return out;
}

describe("response schemas", () => {
  test("none holds a transform, so answers get the compiled check alone", () => {
    const all = responseSchemas();
    expect(all.length).toBeGreaterThan(40);
    expect(all.filter(({ schema }) => hasTransform(schema)).map(({ route }) => route)).toEqual([]);
  });

  test("integers in answers are numbers, never numeric strings; timestamps are RFC 3339", () => {
    const check = TypeCompiler.Compile(BackupJob);
    const job = {
      id: "job_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q",
      dataSourceId: "ds_1",
      policyId: null,
      attachmentId: null,
      destinationId: null,
      trigger: "manual",
      status: "succeeded",
      attempt: 1,
      nodeId: null,
      queuedAt: "2026-11-29T10:00:00.000Z",
      startedAt: null,
      finishedAt: null,
      progress: { bytesIn: 10, bytesStored: 5 },
      sizeBytes: 10,
      storedBytes: 5,
      sha256: null,
      objectKey: null,
      format: null,
      error: null,
      fileDeletedAt: null,
      parts: null,
      fingerprint: null,
      physical: null,
    };
    expect(check.Check(job)).toBe(true);
    expect(check.Check({ ...job, attempt: "1" })).toBe(false);
    expect(check.Check({ ...job, progress: { bytesIn: "10", bytesStored: 5 } })).toBe(false);
    expect(FormatRegistry.Get("date-time")?.("2026-11-29T10:00:00.000Z")).toBe(true);
    for (const loose of ["Sun Nov 29 2026 10:00:00 GMT+0000 (Coordinated Universal Time)", "29/11/2026", "2026-11-29T10:00Z", "2026-02-30T10:00:00Z", "at 2026-11-29T10:00:00Z"]) {
      expect({ loose, ok: check.Check({ ...job, queuedAt: loose }) }).toEqual({ loose, ok: false });
    }
  });
});
