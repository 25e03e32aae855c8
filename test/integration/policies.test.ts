import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { auditEvents, backupJobs, backupPolicies } from "../../src/db/schema.ts";
import { CRON_MESSAGE } from "../../src/scheduler/cron.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createAttachmentVia, policyBody, seedDestination } from "../helpers/policies-seed.ts";

let h: Harness;
let token: string;
let dst: string;
const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

beforeAll(async () => {
  h = await createHarness();
  token = await h.token("org_p");
  dst = await seedDestination(h, "org_p");
});
afterAll(() => h.close());

const create = (body: unknown) => h.call("POST", "/backup-policies", { token, body });
const actions = async (targetId: string) => (await h.store.db.select().from(auditEvents).where(eq(auditEvents.targetId, targetId))).map((e) => e.action);

describe("backup policies", () => {
  test("create applies the documented defaults and answers every field", async () => {
    const res = await create({ name: "nightly", scheduleCron: "15 2 * * *", destinationId: dst, retention: { keepLast: 7 } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      name: "nightly",
      scheduleCron: "15 2 * * *",
      timezone: "UTC",
      destinationId: dst,
      retention: { keepLast: 7, keepHourly: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0, keepYearly: 0, maxAgeDays: null },
      compression: { algorithm: "zstd", level: 3 },
      encryption: { enabled: true, recipients: [] },
      timeoutSeconds: 86400,
      retries: 2,
    });
    expect(res.body.id).toMatch(/^pol_/);
    expect(await actions(res.body.id)).toEqual(["backup_policy.created"]);
    const got = await h.call("GET", `/backup-policies/${res.body.id}`, { token });
    expect(got.body).toEqual(res.body);
  });

  test("the full documented example body round-trips", async () => {
    const body = {
      name: "full",
      scheduleCron: "15 2 * * *",
      timezone: "Europe/Berlin",
      destinationId: dst,
      retention: { keepLast: 7, keepHourly: 0, keepDaily: 7, keepWeekly: 4, keepMonthly: 12, keepYearly: 0, maxAgeDays: null },
      compression: { algorithm: "gzip", level: 9 },
      encryption: { enabled: true, recipients: [RECIPIENT] },
      timeoutSeconds: 3600,
      retries: 0,
    };
    const res = await create(body);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject(body);
  });

  test("scheduleCron must be exactly 5 cron fields", async () => {
    const cases: [string, RegExp][] = [
      ["0 15 2 * * *", /has 6 fields/],
      ["* * * *", /has 4 fields/],
      ["@daily", /nicknames/],
      ["61 * * * *", /minute: 61/],
      ["every night", /has 2 fields/],
      ["", /has 0 fields/],
      ["1 2 3 4 5 6 7", /has 7 fields/],
      ["* * * * * *", /has 6 fields/],
      // Valid fields, but no date ever matches: accepted, the attachment would never run.
      ["0 3 31 2 *", /never fires/],
      ["0 0 31 4 *", /never fires/],
    ];
    for (const [bad, why] of cases) {
      const res = await create(policyBody(dst, { scheduleCron: bad }));
      expect({ bad, status: res.status, code: res.body.code, details: res.body.details.map((d: { path: string }) => d.path) }).toEqual({
        bad,
        status: 400,
        code: "INVALID_INPUT",
        details: ["/scheduleCron"],
      });
      // The fixed sentence first, then what is wrong; the detail says the same.
      expect(res.body.message.startsWith(`${CRON_MESSAGE}: `)).toBe(true);
      expect({ bad, message: res.body.message }).toEqual({ bad, message: expect.stringMatching(why) });
      expect(res.body.details[0].message).toBe(res.body.message);
    }
    for (const good of ["*/5 * * * *", "0 0 * * MON-FRI", "  30   2 1 * * "]) {
      expect((await create(policyBody(dst, { scheduleCron: good }))).status).toBe(201);
    }
  });

  test("timezone must be an IANA zone; its spelling is canonicalised", async () => {
    for (const bad of ["Mars/Olympus", "+01:00", "GMT+1 ", "Europe/"]) {
      const res = await create(policyBody(dst, { timezone: bad }));
      expect(res.status).toBe(400);
      expect(res.body.details[0].path).toBe("/timezone");
    }
    const ok = await create(policyBody(dst, { timezone: "europe/berlin" }));
    expect(ok.body.timezone).toBe("Europe/Berlin");
  });

  test("destination must exist in the org (another org's is 404 like a missing one)", async () => {
    const foreign = await seedDestination(h, "org_other");
    for (const id of [foreign, "dst_nope"]) {
      const res = await create(policyBody(id));
      expect(res.status).toBe(404);
      expect(res.body.details[0].path).toBe("/destinationId");
    }
  });

  test("retention needs a rule that keeps something; unknown fields are refused", async () => {
    for (const retention of [{}, { keepLast: 0, keepDaily: 0 }, { maxAgeDays: null }]) {
      const res = await create(policyBody(dst, { retention }));
      expect(res.status).toBe(400);
      expect(res.body.details[0].path).toBe("/retention");
    }
    expect((await create(policyBody(dst, { retention: { maxAgeDays: 30 } }))).status).toBe(201);
    expect((await create(policyBody(dst, { retention: { keepMinutely: 3 } }))).status).toBe(400);
    expect((await create(policyBody(dst, { color: "red" }))).status).toBe(400);
  });

  test("keepHourly and -1 (no limit) are accepted; counts below -1 and non-integers are 400 on the field, nothing written", async () => {
    const all = { keepLast: -1, keepHourly: 24, keepDaily: -1, keepWeekly: -1, keepMonthly: -1, keepYearly: -1, maxAgeDays: 90 };
    const ok = await create(policyBody(dst, { name: "unlimited", retention: all }));
    expect(ok.status).toBe(201);
    expect(ok.body.retention).toEqual(all);
    expect((await h.call("GET", `/backup-policies/${ok.body.id}`, { token })).body.retention).toEqual(all);
    // -1 alone is a rule that keeps something.
    const hourly = await create(policyBody(dst, { name: "hourly-only", retention: { keepHourly: -1 } }));
    expect(hourly.status).toBe(201);
    expect(hourly.body.retention).toMatchObject({ keepHourly: -1, keepLast: 0 });

    const policiesBefore = (await h.call("GET", "/backup-policies?limit=200", { token })).body.items.length;
    for (const field of ["keepLast", "keepHourly", "keepDaily", "keepWeekly", "keepMonthly", "keepYearly"]) {
      for (const value of [-2, -100, 1.5, -0.5, 100_001]) {
        const res = await create(policyBody(dst, { name: `bad-${field}`, retention: { keepLast: 1, [field]: value } }));
        expect({ field, value, status: res.status, code: res.body.code }).toEqual({ field, value, status: 400, code: "INVALID_INPUT" });
        expect(res.body.details.map((d: any) => d.path)).toContain(`/retention/${field}`);
      }
    }
    for (const value of [-1, 0, 1.5]) {
      const res = await create(policyBody(dst, { name: "bad-age", retention: { keepLast: 1, maxAgeDays: value } }));
      expect(res.status).toBe(400);
      expect(res.body.details.map((d: any) => d.path)).toContain("/retention/maxAgeDays");
    }
    expect((await h.call("GET", "/backup-policies?limit=200", { token })).body.items.length).toBe(policiesBefore);

    // PATCH: the same rules; a refused patch leaves the stored retention as it was.
    const patched = await h.call("PATCH", `/backup-policies/${hourly.body.id}`, { token, body: { retention: { keepHourly: 48, keepDaily: -1 } } });
    expect(patched.status).toBe(200);
    expect(patched.body.retention).toMatchObject({ keepHourly: 48, keepDaily: -1 });
    for (const value of [-2, 2.5]) {
      const bad = await h.call("PATCH", `/backup-policies/${hourly.body.id}`, { token, body: { retention: { keepHourly: value } } });
      expect(bad.status).toBe(400);
      expect(bad.body.details.map((d: any) => d.path)).toContain("/retention/keepHourly");
    }
    expect((await h.call("GET", `/backup-policies/${hourly.body.id}`, { token })).body.retention).toEqual(patched.body.retention);
  });

  test("a policy stored before keepHourly existed reads, and patches, with keepHourly 0", async () => {
    const created = (await create(policyBody(dst, { name: "old-shape", retention: { keepLast: 3, keepDaily: 7 } }))).body;
    const oldShape = { keepLast: 3, keepDaily: 7, keepWeekly: 0, keepMonthly: 0, keepYearly: 0, maxAgeDays: null };
    await h.store.db.update(backupPolicies).set({ retention: oldShape }).where(eq(backupPolicies.id, created.id));
    const got = await h.call("GET", `/backup-policies/${created.id}`, { token });
    expect(got.body.retention).toEqual({ ...oldShape, keepHourly: 0 });
    const patched = await h.call("PATCH", `/backup-policies/${created.id}`, { token, body: { retention: { keepHourly: 6 } } });
    expect(patched.body.retention).toEqual({ ...oldShape, keepHourly: 6 });
  });

  test("compression level is checked per algorithm", async () => {
    const level = async (compression: unknown) => {
      const res = await create(policyBody(dst, { compression }));
      return res.status === 201 ? res.body.compression : res.body.details?.[0]?.path;
    };
    expect(await level({ algorithm: "zstd", level: 19 })).toEqual({ algorithm: "zstd", level: 19 });
    expect(await level({ algorithm: "zstd", level: 20 })).toBe("/compression/level");
    expect(await level({ algorithm: "zstd", level: 0 })).toBe("/compression/level");
    expect(await level({ algorithm: "gzip" })).toEqual({ algorithm: "gzip", level: 6 });
    expect(await level({ algorithm: "gzip", level: 10 })).toBe("/compression/level");
    expect(await level({ algorithm: "none", level: 7 })).toEqual({ algorithm: "none", level: 0 });
    expect(await level({ algorithm: "lz4" })).toBe("/compression/algorithm");
  });

  test("recipients must be age X25519 public keys with a valid checksum", async () => {
    const broken = RECIPIENT.slice(0, -1) + (RECIPIENT.endsWith("p") ? "q" : "p");
    for (const bad of [broken, "age1", "ssh-ed25519 AAAA", RECIPIENT.toUpperCase(), "AGE-SECRET-KEY-1QQQ"]) {
      const res = await create(policyBody(dst, { encryption: { recipients: [bad] } }));
      expect({ bad, status: res.status, path: res.body.details?.[0]?.path }).toEqual({ bad, status: 400, path: "/encryption/recipients/0" });
    }
    const off = await create(policyBody(dst, { encryption: { enabled: false, recipients: [RECIPIENT] } }));
    expect(off.status).toBe(400);
    const dup = await create(policyBody(dst, { encryption: { recipients: [RECIPIENT, RECIPIENT] } }));
    expect(dup.body.encryption).toEqual({ enabled: true, recipients: [RECIPIENT] });
  });

  test("names are unique per org, not across orgs", async () => {
    expect((await create(policyBody(dst, { name: "dup" }))).status).toBe(201);
    const again = await create(policyBody(dst, { name: "dup" }));
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("CONFLICT");
    const other = await h.token("org_q");
    const otherDst = await seedDestination(h, "org_q");
    expect((await h.call("POST", "/backup-policies", { token: other, body: policyBody(otherDst, { name: "dup" }) })).status).toBe(201);
  });

  test("PATCH merges nested objects, validates, audits what changed", async () => {
    const created = (await create(policyBody(dst, { retention: { keepLast: 3, keepDaily: 7 } }))).body;
    const res = await h.call("PATCH", `/backup-policies/${created.id}`, {
      token,
      body: { retention: { keepDaily: 0, keepWeekly: 4 }, compression: { level: 5 }, retries: 4 },
    });
    expect(res.status).toBe(200);
    expect(res.body.retention).toEqual({ keepLast: 3, keepHourly: 0, keepDaily: 0, keepWeekly: 4, keepMonthly: 0, keepYearly: 0, maxAgeDays: null });
    expect(res.body.compression).toEqual({ algorithm: "zstd", level: 5 });
    expect(res.body.retries).toBe(4);
    expect(res.body.updatedAt >= created.updatedAt).toBe(true);
    const bad = await h.call("PATCH", `/backup-policies/${created.id}`, { token, body: { scheduleCron: "0 0 0 * * *" } });
    expect(bad.body.message).toStartWith(CRON_MESSAGE);
    expect((await h.call("PATCH", `/backup-policies/${created.id}`, { token, body: { retention: { keepLast: 0, keepWeekly: 0 } } })).status).toBe(400);
    expect((await h.call("PATCH", `/backup-policies/${created.id}`, { token, body: { destinationId: "dst_missing" } })).status).toBe(404);
    expect((await h.call("PATCH", `/backup-policies/${created.id}`, { token, body: { id: "pol_x" } })).status).toBe(400);
    const events = await h.store.db.select().from(auditEvents).where(eq(auditEvents.targetId, created.id));
    expect(events.map((e) => e.action)).toEqual(["backup_policy.created", "backup_policy.updated"]);
    expect((events[1]!.metadata as any).changed.sort()).toEqual(["compression", "retention", "retries"]);
    // A name clash on rename is a 409 too.
    await create(policyBody(dst, { name: "taken" }));
    expect((await h.call("PATCH", `/backup-policies/${created.id}`, { token, body: { name: "taken" } })).status).toBe(409);
  });

  test("list is paginated newest first, with filters", async () => {
    const t2 = await h.token("org_list");
    const d2 = await seedDestination(h, "org_list");
    const d3 = await seedDestination(h, "org_list");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await h.call("POST", "/backup-policies", { token: t2, body: policyBody(i < 3 ? d2 : d3, { name: `p-${i}_x` }) });
      ids.push(res.body.id);
    }
    const first = await h.call("GET", "/backup-policies?limit=2", { token: t2 });
    expect(first.body.items.map((p: any) => p.id)).toEqual([ids[4], ids[3]]);
    const second = await h.call("GET", `/backup-policies?limit=2&cursor=${first.body.cursors.next}`, { token: t2 });
    expect(second.body.items.map((p: any) => p.id)).toEqual([ids[2], ids[1]]);
    const byDest = await h.call("GET", `/backup-policies?destinationId=${d3}`, { token: t2 });
    expect(byDest.body.items.map((p: any) => p.id)).toEqual([ids[4], ids[3]]);
    const byName = await h.call("GET", `/backup-policies?q=P-2_`, { token: t2 });
    expect(byName.body.items.map((p: any) => p.id)).toEqual([ids[2]]);
    expect((await h.call("GET", `/backup-policies?q=%25`, { token: t2 })).body.items).toEqual([]);
  });

  test("DELETE is 409 while attached; cascade detaches, keeps jobs, audits each detach", async () => {
    const policy = (await create(policyBody(dst))).body;
    const att = await createAttachmentVia(h, "org_p", policy.id);
    const ds = att.dataSourceId;
    await h.store.db
      .insert(backupJobs)
      .values({ id: "job_kept", orgId: "org_p", dataSourceId: ds, policyId: policy.id, attachmentId: att.id, trigger: "schedule", status: "succeeded", queuedAt: Date.now() });
    const refused = await h.call("DELETE", `/backup-policies/${policy.id}`, { token });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe("CONFLICT");
    const gone = await h.call("DELETE", `/backup-policies/${policy.id}?cascade=true`, { token });
    expect(gone.status).toBe(204);
    expect((await h.call("GET", `/backup-policies/${policy.id}`, { token })).status).toBe(404);
    expect((await h.call("GET", `/attachments/${att.id}`, { token })).status).toBe(404);
    expect(await h.store.db.select().from(backupJobs).where(eq(backupJobs.id, "job_kept"))).toHaveLength(1);
    expect(await actions(att.id)).toEqual(["attachment.created", "attachment.deleted"]);
    expect(await actions(policy.id)).toContain("backup_policy.deleted");
    // Without attachments a plain delete works.
    const lone = (await create(policyBody(dst))).body;
    expect((await h.call("DELETE", `/backup-policies/${lone.id}`, { token })).status).toBe(204);
    expect((await h.call("DELETE", `/backup-policies/${lone.id}`, { token })).status).toBe(404);
  });
});
