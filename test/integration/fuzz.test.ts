import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { Glob } from "bun";
import fc from "fast-check";
import { derivedKey } from "../../src/cli/runtime.ts";
import { DownloadTokens } from "../../src/storage/download-token.ts";
import { managedDestination } from "../helpers/api-flow.ts";
import { hostileBody, hostileQuery, hostileSegment, type BodyCase, type FuzzLimits } from "../helpers/fuzz-inputs.ts";
import { storeConsistency, storeFingerprint, writeCounter } from "../helpers/fuzz-store.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { fixtureFor, type Fixtures, type SpecRoute } from "../helpers/security-suite.ts";
import { FIXTURE_SQLITE_ROOT } from "../security-fixtures/data-sources.ts";

/**
 * Property-based fuzzing of every route of the served OpenAPI document: hostile path
 * segments, query strings and bodies (see test/helpers/fuzz-inputs.ts). For every request:
 * no 5xx; every 4xx carries `{ code, message }`; a rejected request changes no row of any
 * table (the audit log included). At the end the store passes integrity and FK checks.
 * Seeded: set SNAPDB_FUZZ_SEED to replay; the seed is printed on failure.
 */
const SEED = Number(process.env.SNAPDB_FUZZ_SEED ?? Date.now() % 2 ** 31);
const RUNS = Number(process.env.SNAPDB_FUZZ_RUNS ?? 40);
const LIMITS: FuzzLimits = { bodyLimit: 64 * 1024 };

const fixtures: Fixtures = {};
for (const file of new Glob("*.ts").scanSync(`${import.meta.dir}/../security-fixtures`)) {
  Object.assign(fixtures, (await import(`../security-fixtures/${file}`)).fixtures as Fixtures);
}

let h: Harness;
let spec: any;
let token: string;
let cursors: string[];
let downloadTokens: string[];

/** Cursors a client could forge or mix up: foreign lists and orgs, tampered, and signed nonsense. */
function forgedCursors(valid: string): string[] {
  const key = derivedKey(h.master, "cursor");
  const sign = (payload: string) => {
    const p = Buffer.from(payload).toString("base64url");
    return `${p}.${createHmac("sha256", key).update(p).digest().subarray(0, 16).toString("base64url")}`;
  };
  const [p, mac] = valid.split(".");
  return [
    valid,
    `${p}.${mac!.slice(0, -2)}AA`,
    `${p}x.${mac}`,
    `${p}.${mac}.x`,
    ".",
    "....",
    "not-a-cursor",
    Buffer.from('{"l":"data-sources","o":"org_a","k":"ds_z"}').toString("base64url") + ".AAAA",
    sign("null"),
    sign("[]"),
    sign('"str"'),
    sign("{not json"),
    sign('{"l":"data-sources","o":"org_a","k":123}'),
    sign('{"l":"data-sources","o":"org_b","k":"ds_z"}'),
  ];
}

beforeAll(async () => {
  h = await createHarness({ SNAPDB_BODY_LIMIT_BYTES: String(LIMITS.bodyLimit), SNAPDB_ALLOWED_SQLITE_ROOTS: FIXTURE_SQLITE_ROOT });
  spec = (await h.call("GET", "/swagger/json")).body;
  token = await h.token("org_a");
  // A few data sources so that a list has a next page and a real cursor.
  for (const f of ["/data-sources/{id}", "/data-sources/{id}", "/data-sources/{id}"]) await fixtures[f]!.params(h, "org_a");
  const page = await h.call("GET", "/data-sources?limit=1", { token });
  cursors = forgedCursors(page.body.cursors.next);
  const managed = await managedDestination(h, token);
  const signer = new DownloadTokens(derivedKey(h.master, "download"));
  const grant = (key: string, destinationId = managed.id) => signer.sign({ destinationId, key, expiresAt: Date.now() + 3_600_000, filename: "f" });
  // Signed with the real key: traversal in the object key must still never leave the destination.
  downloadTokens = [grant("../../snapdb.db"), grant("../snapdb.db"), grant("/etc/passwd"), grant("org_a/%2e%2e/x"), grant("org_a/x.dump", "dst_nope"), grant("\u0000")];
  console.log(`fuzz seed ${SEED}, ${RUNS} runs per route (SNAPDB_FUZZ_SEED to replay)`);
});
afterAll(() => h?.close());

interface Op {
  method: string;
  template: string;
  op: any;
}

const operations = (): Op[] => Object.entries<any>(spec.paths).flatMap(([template, item]) => Object.entries<any>(item).map(([method, op]) => ({ method: method.toUpperCase(), template, op })));

async function send(method: string, path: string, body: BodyCase | null) {
  if (!body) return h.call(method, path, { token });
  if (body.kind === "json") {
    // JSON.stringify writes lone surrogates as \ud800 escapes: exactly the hostile text wanted.
    const text = JSON.stringify(body.value);
    return h.call(method, path, { token, rawBody: text ?? "" });
  }
  return h.call(method, path, { token, rawBody: body.text, headers: body.contentType ? { "content-type": body.contentType } : {} });
}

function checkAnswer(where: string, res: { status: number; body: any; text: string }) {
  if (res.status >= 500) throw new Error(`${where} → ${res.status}: ${res.text.slice(0, 300)}`);
  if (res.status >= 400) {
    const ok = res.body && typeof res.body.code === "string" && typeof res.body.message === "string";
    if (!ok) throw new Error(`${where} → ${res.status} without { code, message }: ${res.text.slice(0, 300)}`);
  }
}

describe("fuzzing every route from the OpenAPI document", () => {
  test("the document describes the request bodies it validates", () => {
    const withBody = operations().filter((o) => o.op.requestBody);
    expect(withBody.length).toBeGreaterThan(5);
    for (const o of withBody)
      expect({ where: `${o.method} ${o.template}`, hasSchema: !!o.op.requestBody.content?.["application/json"]?.schema }).toEqual({ where: `${o.method} ${o.template}`, hasSchema: true });
  });

  test(
    "hostile path, query and body: no 5xx, errors well-formed, rejected requests change nothing",
    async () => {
      const started = performance.now();
      const only = process.env.SNAPDB_FUZZ_ONLY; // "METHOD /template" to replay one route
      for (const { method, template, op } of operations().filter((o) => !only || `${o.method} ${o.template}` === only)) {
        const routeStarted = performance.now();
        const route: SpecRoute = { method, template, scope: op["x-required-scope"] ?? "" };
        const fixture = fixtureFor(fixtures, route);
        const pathNames = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
        const valid: Record<string, string[]> = {};
        const refresh = async () => {
          for (const name of pathNames) {
            if (template.startsWith("/downloads/")) valid[name] = downloadTokens;
            else if (fixture) valid[name] = [(await fixture.params(h, "org_a"))[name]!, (await fixture.params(h, "org_b"))[name]!];
            else valid[name] = ["x"];
          }
        };
        await refresh();
        const queryParams = ((op.parameters ?? []) as any[]).filter((p) => p.in === "query").map((p) => ({ name: p.name as string, schema: p.schema }));
        const bodySchema = op.requestBody?.content?.["application/json"]?.schema;
        const canHaveBody = method !== "GET" && method !== "HEAD";
        const input = fc.record({
          segments: fc.tuple(...pathNames.map((n) => hostileSegment(valid[n]!, LIMITS))),
          query: hostileQuery(queryParams, spec, LIMITS, cursors),
          body: canHaveBody ? fc.option(hostileBody(bodySchema, spec, LIMITS), { nil: null, freq: bodySchema ? 10 : 3 }) : fc.constant(null),
        });
        const routeBefore = await storeFingerprint(h.store);
        let accepted = 0;
        await fc
          .assert(
            fc.asyncProperty(input, async ({ segments, query, body }) => {
              let i = 0;
              const path = template.replace(/\{\w+\}/g, () => segments[i++]!) + query;
              const where = `${method} ${template} (${path.slice(0, 200)}) body=${JSON.stringify(body)?.slice(0, 200)}`;
              const before = await writeCounter(h.store);
              let res: Awaited<ReturnType<typeof send>>;
              try {
                res = await send(method, path, body);
              } catch (err) {
                throw new Error(`${where} threw: ${(err as Error)?.stack ?? err}`);
              }
              checkAnswer(where, res);
              if (res.status >= 400) {
                const after = await writeCounter(h.store);
                if (after !== before) throw new Error(`${where} → ${res.status} but changed rows: ${JSON.stringify({ before, after })}`);
              } else {
                accepted++;
              }
              if (res.status < 400 && (method === "DELETE" || template.endsWith("/cancel"))) {
                await refresh(); // keep a live resource to aim at
              }
            }),
            { numRuns: RUNS, seed: SEED, endOnFailure: true },
          )
          .catch((err) => {
            if (process.env.SNAPDB_FUZZ_VERBOSE) console.log(err, err?.cause);
            throw new Error(`fuzz failure on ${method} ${template} with seed ${SEED} (SNAPDB_FUZZ_SEED=${SEED} to replay):\n${err.message}\n${err?.cause?.message ?? ""}`);
          });
        // Belt and braces: when every request of a route was refused, a hash of every row agrees.
        if (accepted === 0) expect({ route: `${method} ${template}`, tables: await storeFingerprint(h.store) }).toEqual({ route: `${method} ${template}`, tables: routeBefore });
        if (process.env.SNAPDB_FUZZ_VERBOSE) console.log(`${method} ${template}: accepted ${accepted}, ${Math.round(performance.now() - routeStarted)} ms`);
      }
      console.log(`fuzzed ${operations().length} routes in ${Math.round(performance.now() - started)} ms`);
    },
    Math.max(120_000, RUNS * 4_000),
  );

  test("the store stays consistent", async () => {
    expect(await storeConsistency(h)).toEqual({ integrity: "ok", foreignKeyViolations: [] });
  });
});
