import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateTypes } from "snapdb-openapi-codegen";
import { REPO_ROOT, startDaemon, type Daemon } from "../helpers/daemon.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * The served OpenAPI document is a client contract: openapi-typescript generates types from
 * the compiled daemon's `/swagger/json`, the README journey written against them with
 * openapi-fetch (test/fixtures/typed-client/journey.ts: no cast, no `any`) type-checks
 * with `tsc --strict`, and then runs against that daemon and a real PostgreSQL to a
 * succeeded restore.
 */
const JOURNEY = join(REPO_ROOT, "test/fixtures/typed-client/journey.ts");
const work = tempDir("snapdb-typed-client");
let pg: PgServer;
let daemon: Daemon;

beforeAll(async () => {
  [pg, daemon] = await Promise.all([startPostgres(), startDaemon({ binary: "compiled" })]);
  pg.psql(`ALTER ROLE ${pg.user} CREATEDB`); // the restore goes to a new database
  pg.psql(
    `SET ROLE ${pg.user};
     CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2));
     INSERT INTO orders (customer, total) SELECT 'customer ' || g, g * 2.5 FROM generate_series(1, 200) g;`,
    pg.database,
  );
  copyFileSync(JOURNEY, join(work.path, "journey.ts"));
  symlinkSync(join(REPO_ROOT, "node_modules"), join(work.path, "node_modules"));
}, 180_000);

afterAll(async () => {
  await daemon?.stop("SIGTERM");
  await pg?.stop();
  work.cleanup();
});

/** The journey's code without its comments and string literals. */
function codeOf(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/\/\/.*$/gm, "")
    .replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '""');
}

describe("a client generated from the served document", () => {
  test("the journey has no cast, no any, no non-null assertion, no ts directive", () => {
    const source = readFileSync(JOURNEY, "utf8");
    expect(source).not.toMatch(/@ts-/);
    const code = codeOf(source);
    expect(code.match(/\bas\s+(?!const\b)\w+/g) ?? []).toEqual([]);
    expect(code.match(/\bany\b/g) ?? []).toEqual([]);
    expect(code.match(/[\w)\]]!(?!=)/g) ?? []).toEqual([]);
    // The checks above do see what they look for.
    expect(codeOf("const a = b as Foo; let c: any = d!.e; // x as Y").match(/\bas\s+(?!const\b)\w+|\bany\b|[\w)\]]!(?!=)/g)).toEqual(["as Foo", "any", "d!"]);
  });

  test("openapi-typescript's types of /swagger/json type-check the journey under tsc --strict", async () => {
    const spec = await (await fetch(`${daemon.baseUrl}/swagger/json`)).json();
    const types = await generateTypes(spec as object);
    expect(types).toContain("export interface paths");
    writeFileSync(join(work.path, "snapdb.d.ts"), types);
    writeFileSync(
      join(work.path, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ESNext",
          module: "Preserve",
          moduleResolution: "bundler",
          lib: ["ESNext"],
          types: ["bun"],
          strict: true,
          noUncheckedIndexedAccess: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: false,
          noEmit: true,
        },
        files: ["journey.ts", "snapdb.d.ts"],
      }),
    );
    const tsc = Bun.spawn([join(REPO_ROOT, "node_modules/.bin/tsc"), "-p", join(work.path, "tsconfig.json")], { cwd: work.path, stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(tsc.stdout).text(), new Response(tsc.stderr).text()]);
    expect({ code: await tsc.exited, out, err }).toEqual({ code: 0, out: "", err: "" });
  }, 120_000);

  test("the journey runs against the compiled daemon and ends with a succeeded restore", async () => {
    const journey = Bun.spawn([process.execPath, join(work.path, "journey.ts")], {
      cwd: work.path,
      env: {
        PATH: process.env.PATH!,
        SNAPDB_URL: daemon.baseUrl,
        SNAPDB_TOKEN: await daemon.token("acme"),
        PGHOST: pg.host,
        PGPORT: String(pg.port),
        PGDATABASE: pg.database,
        PGUSER: pg.user,
        PGPASSWORD: pg.password,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => journey.kill("SIGKILL"), 150_000);
    const [out, err] = await Promise.all([new Response(journey.stdout).text(), new Response(journey.stderr).text()]);
    clearTimeout(timer);
    expect({ code: await journey.exited, err }).toEqual({ code: 0, err: "" });
    const last = out.trim().split("\n").at(-1) ?? "";
    expect(last).toMatch(/^restore succeeded rst_/);
    expect(out).toContain("POST /storage-destinations/managed/ensure: 201");
    expect(out).toContain("GET /downloads/{token}: 200");
    expect(out).toContain("DELETE /backup-policies/{id}: 204");
    const count = (db: string) => pg.psql(`SELECT count(*), sum(total) FROM orders`, db);
    expect(count(`${pg.database}_restored`)).toBe(count(pg.database));
  }, 180_000);
});
