import fc from "fast-check";

/**
 * Hostile inputs for the fuzz suite, derived from the served OpenAPI document: a valid-ish
 * value from each JSON schema, then mutations of it (wrong types, huge strings, unicode
 * with lone surrogates, NUL bytes, deep nesting, out-of-range numbers, path traversal,
 * random cron strings, extra fields), and raw bodies that are not even JSON.
 */
type Schema = Record<string, any>;

export interface FuzzLimits {
  /** The daemon's body limit in bytes: huge strings are generated just under and over it. */
  bodyLimit: number;
}

const TRAVERSAL = [
  "../../../../etc/passwd",
  "..",
  "../",
  "..\\..\\windows\\win.ini",
  "/etc/shadow",
  "/proc/self/environ",
  "%2e%2e%2f%2e%2e%2fetc",
  "....//....//etc",
  "/var/lib/app/../../../root/.ssh/id_rsa",
  "./",
  "/",
  "//server/share",
  "file:///etc/passwd",
  "C:\\Windows",
  "a/../../b",
];

const WEIRD = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "x\udfffy",
  "\udbff\udfff",
  "\ufeff",
  "\u202e\u0041",
  "🔥💾",
  "e\u0301",
  "NaN",
  "Infinity",
  "-Infinity",
  "-0",
  "1e309",
  "0x1F",
  " 5",
  "5 ",
  "1.5",
  "9".repeat(40),
  "null",
  "true",
  "[]",
  "{}",
  "__proto__",
  "constructor",
  "'; DROP TABLE data_sources;--",
  '" OR 1=1 --',
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "%s%n%x",
  "\r\nX-Injected: 1",
  "age1notakey",
  "ds_",
  "job_" + "0".repeat(26),
];

const CRON_TOKENS = [
  "*",
  "*/5",
  "0",
  "59",
  "60",
  "61",
  "1-5",
  "5-1",
  "1,2,3",
  "L",
  "W",
  "#",
  "?",
  "MON",
  "JAN",
  "-1",
  "99999999999999999999",
  "*/0",
  "1/0",
  "a",
  "@daily",
  "@reboot",
  "١",
  "\u0000",
  "",
  "0-59/15",
];

/** Cron-ish strings: 0–8 fields of plausible and broken tokens. */
export const cronish = fc.oneof(
  fc.array(fc.constantFrom(...CRON_TOKENS), { minLength: 0, maxLength: 8 }).map((f) => f.join(" ")),
  fc.constantFrom("15 2 * * *", "0 0 * * * *", "* * * * * * *", "@yearly", "0 0 30 2 *", "*/1 * * * *", " ", "0 0 31 4 *"),
  fc.string({ maxLength: 40 }),
);

const timezoneish = fc.constantFrom("UTC", "Europe/Berlin", "Mars/Olympus", "../../etc/localtime", "Etc/GMT+14", "GMT+99", "", "utc", "America/Argentina/ComodRivadavia", "\u0000");

/** Strings no sane client sends; `huge` adds sizes around the body limit. */
export function hostileString(limits: FuzzLimits): fc.Arbitrary<string> {
  const near = [limits.bodyLimit - 512, limits.bodyLimit + 16, limits.bodyLimit * 3];
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...WEIRD, ...TRAVERSAL) },
    { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 64 }) },
    { weight: 1, arbitrary: fc.string({ unit: fc.constantFrom("\ud800", "\udc00", "\u0000", "a", "é", "\uffff"), maxLength: 16 }) },
    { weight: 1, arbitrary: fc.constantFrom(256, 257, 1025, 4097, 5000).map((n) => "x".repeat(n)) },
    { weight: 1, arbitrary: fc.constantFrom(...near).map((n) => "y".repeat(Math.max(0, n))) },
    { weight: 1, arbitrary: cronish },
  );
}

const hostileNumber = fc.oneof(
  fc.constantFrom(-1, 0, 1.5, -0, 2 ** 31, 2 ** 31 - 1, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, Number.MIN_VALUE, 65536, 3601, 59),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/** Deeply nested arrays or objects (JSON.stringify of them is still valid JSON). */
const deep = fc.integer({ min: 20, max: 3000 }).chain((depth) =>
  fc.constantFrom("array", "object").map((kind) => {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = kind === "array" ? [v] : { a: v };
    return v;
  }),
);

export function hostileValue(limits: FuzzLimits): fc.Arbitrary<unknown> {
  const str = hostileString(limits);
  return fc.oneof(
    { weight: 5, arbitrary: str },
    { weight: 3, arbitrary: hostileNumber },
    { weight: 1, arbitrary: fc.constantFrom(true, false, null) },
    { weight: 1, arbitrary: fc.array(str, { maxLength: 5 }) },
    { weight: 1, arbitrary: fc.dictionary(str, str, { maxKeys: 4 }) },
    { weight: 1, arbitrary: fc.constant(JSON.parse('{"__proto__": {"admin": true}, "constructor": {"prototype": {"x": 1}}}')) },
    { weight: 1, arbitrary: deep },
  );
}

/** A value meant to satisfy `schema` (resolving `$ref`s into `components`). */
export function validFrom(schema: Schema | undefined, spec: Schema, name = "", depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 6) return fc.constant(undefined);
  if (schema.$ref) {
    const target = String(schema.$ref).replace(/^#\/components\/schemas\//, "");
    return validFrom(spec.components?.schemas?.[target], spec, name, depth + 1);
  }
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) {
    // Elysia widens integers to "integer or numeric string": prefer the real branch.
    const real = branches.filter((b: Schema) => !(b.type === "string" && b.format === "integer"));
    return fc.oneof(...real.map((b: Schema) => validFrom(b, spec, name, depth + 1)));
  }
  if (name === "scheduleCron") return fc.constantFrom("15 2 * * *", "*/5 * * * *");
  if (name === "timezone") return fc.constantFrom("UTC", "Europe/Berlin");
  switch (schema.type) {
    case "string": {
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern)).filter((s) => s.length <= (schema.maxLength ?? 200));
      const min = schema.minLength ?? 0;
      const max = Math.min(schema.maxLength ?? 40, Math.max(min, 40));
      return fc.string({ minLength: min, maxLength: max, unit: "grapheme-ascii" });
    }
    case "integer":
      return fc.integer({ min: schema.minimum ?? -1000, max: schema.maximum ?? 100_000 });
    case "number":
      return fc.double({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6, noNaN: true });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array":
      return fc.array(validFrom(schema.items, spec, name, depth + 1), { maxLength: Math.min(schema.maxItems ?? 3, 3) });
    case "object": {
      const props: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, sub] of Object.entries<Schema>(schema.properties ?? {})) props[key] = validFrom(sub, spec, key, depth + 1);
      const required = (schema.required ?? []) as string[];
      if (!schema.properties && schema.additionalProperties && typeof schema.additionalProperties === "object") {
        return fc.dictionary(fc.string({ minLength: 1, maxLength: 10 }), validFrom(schema.additionalProperties, spec, "", depth + 1) as fc.Arbitrary<any>, { maxKeys: 3 });
      }
      return fc.record(props, { requiredKeys: required.filter((k) => k in props) });
    }
    default:
      return fc.constant(undefined);
  }
}

/** Every JSON pointer-ish path into a value, the root included. */
function pathsOf(value: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
  out.push(prefix);
  if (value && typeof value === "object" && prefix.length < 4) {
    for (const key of Object.keys(value)) pathsOf((value as any)[key], [...prefix, key], out);
  }
  return out;
}

function setAt(value: unknown, path: string[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) };
  copy[path[0]!] = setAt(copy[path[0]!], path.slice(1), replacement);
  return copy;
}

function deleteAt(value: unknown, path: string[]): unknown {
  if (path.length === 0 || !value || typeof value !== "object") return value;
  const copy: any = Array.isArray(value) ? [...value] : { ...(value as object) };
  if (path.length === 1) delete copy[path[0]!];
  else copy[path[0]!] = deleteAt(copy[path[0]!], path.slice(1));
  return copy;
}

/** A field name tells which extra hostility fits it (traversal for paths, cron for schedules…). */
function specialFor(key: string | undefined, limits: FuzzLimits): fc.Arbitrary<unknown> {
  if (key === "scheduleCron") return cronish;
  if (key === "timezone") return timezoneish;
  if (key && /path|prefix|key|bucket|endpoint|host/i.test(key)) return fc.constantFrom(...TRAVERSAL, "http://169.254.169.254/latest/meta-data", "127.0.0.1:9");
  if (key && /id$/i.test(key)) return fc.constantFrom("ds_x", "pol_../../x", "%00", "dst_" + "A".repeat(300), "job_\u0000");
  return hostileValue(limits);
}

export type BodyCase = { kind: "json"; value: unknown } | { kind: "raw"; text: string; contentType?: string };

/** Raw bodies: broken JSON, escapes JSON.stringify never writes, numbers JSON.parse turns into Infinity. */
function rawBodies(limits: FuzzLimits): fc.Arbitrary<BodyCase> {
  const texts = fc.oneof(
    fc.constantFrom(
      "{",
      '{"name": "x",',
      "[",
      "null",
      "0",
      '"str"',
      '{"name":"\\ud800\\udc00\\ud800"}',
      '{"name":"a\\u0000b"}',
      '{"port": 1e999}',
      '{"port": -1e999, "name": 1e-400}',
      '{"name":"a","name":"b"}',
      '\ufeff{"name":"bom"}',
      "{'single': 'quotes'}",
      "NaN",
      "\u0000\u0000",
      '{"a":' + "[".repeat(5000) + "]".repeat(5000) + "}",
      "[".repeat(100_000),
    ),
    fc.string({ unit: "binary", maxLength: 200 }),
  );
  return fc.oneof(
    { weight: 4, arbitrary: texts.map((text) => ({ kind: "raw" as const, text })) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=utf-16")
        .map((contentType) => ({ kind: "raw" as const, text: '{"name":"x"}', contentType })),
    },
    { weight: 1, arbitrary: fc.constant({ kind: "raw" as const, text: JSON.stringify({ name: "z".repeat(limits.bodyLimit + 100) }) }) },
  );
}

/** A body for a route: mostly a valid one with one mutation, sometimes raw garbage. */
export function hostileBody(schema: Schema | undefined, spec: Schema, limits: FuzzLimits): fc.Arbitrary<BodyCase> {
  const base = validFrom(schema, spec);
  const mutated = base.chain((valid) => {
    const paths = pathsOf(valid);
    return fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom(...paths).chain((p) => specialFor(p.at(-1), limits).map((v) => setAt(valid, p, v))) },
      { weight: 2, arbitrary: fc.constantFrom(...paths).chain((p) => hostileValue(limits).map((v) => setAt(valid, p, v))) },
      { weight: 1, arbitrary: fc.constantFrom(...paths).map((p) => deleteAt(valid, p)) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom("extra", "__proto__", "orgId", "id", "createdAt", "password"), hostileValue(limits))
          .map(([k, v]) => (valid && typeof valid === "object" ? { ...(valid as object), [k]: v } : { [k]: v })),
      },
      { weight: 1, arbitrary: fc.constant(valid) },
    );
  });
  return fc.oneof({ weight: 5, arbitrary: mutated.map((value) => ({ kind: "json" as const, value })) }, { weight: 1, arbitrary: rawBodies(limits) });
}

/** Percent-encodes anything, lone surrogates included (as the raw bytes a client could send). */
export function encodeAny(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return [...s]
      .map((ch) => {
        try {
          return encodeURIComponent(ch);
        } catch {
          const c = ch.charCodeAt(0);
          return `%${(0xe0 | (c >> 12)).toString(16)}%${(0x80 | ((c >> 6) & 0x3f)).toString(16)}%${(0x80 | (c & 0x3f)).toString(16)}`;
        }
      })
      .join("");
  }
}

/** Path segments for ids: valid ones, another org's, traversal, broken percent-encoding. */
export function hostileSegment(valid: string[], limits: FuzzLimits): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(...valid) },
    {
      weight: 3,
      arbitrary: hostileString(limits)
        .filter((s) => s.length < 9000)
        .map(encodeAny),
    },
    { weight: 2, arbitrary: fc.constantFrom("%", "%zz", "%00", "%E0%A4%A", "%ff%fe", "..%2f..%2fetc", "%2e%2e", "a%2Fb", "%252e%252e%252f", "ds_%00", "x".repeat(20_000)) },
  );
}

// String(v) throws on a dictionary with a "toString" key: the fuzzer builds those.
const asText = (v: unknown) => (typeof v === "string" ? v : (JSON.stringify(v) ?? ""));

/** A query string for `params`: each one valid, hostile, repeated or left out; plus strays. */
export function hostileQuery(params: { name: string; schema: Schema }[], spec: Schema, limits: FuzzLimits, cursors: string[]): fc.Arbitrary<string> {
  const one = (p: { name: string; schema: Schema }) => {
    const valid = validFrom(p.schema, spec, p.name).map((v) => (v === undefined ? undefined : String(v)));
    const extra = p.name === "cursor" ? fc.constantFrom(...cursors) : p.name === "limit" ? fc.constantFrom("0", "201", "-1", "1.5", "1e2", "0x10", "９", "") : specialFor(p.name, limits).map(asText);
    return fc.oneof(valid, hostileString(limits), extra, fc.constant(undefined)).map((v) => (v === undefined ? [] : [`${p.name}=${encodeAny(v)}`]));
  };
  return fc.tuple(fc.tuple(...params.map(one)), fc.constantFrom([], ["limit=1&limit=2"], ["extra=1"], ["%=%"], ["a[b]=1"], [`${params[0]?.name ?? "q"}=%ff`])).map(([parts, stray]) => {
    const all = [...parts.flat(), ...stray];
    return all.length ? `?${all.join("&")}` : "";
  });
}
