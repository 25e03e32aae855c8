import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startDaemon, REPO_ROOT, type Daemon } from "../helpers/daemon.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";

/**
 * The README's "A first backup and restore", run as written: the first `sh` block of that
 * section goes to bash unchanged, against the compiled binary and a real PostgreSQL. Only
 * the environment the README tells the reader to set is set (API, SNAPDB, PG*).
 */
function firstBlockUnder(heading: string): string {
  const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");
  const section = readme.split(`## ${heading}`)[1];
  const block = section?.match(/```sh\n([\s\S]*?)```/)?.[1];
  if (!block) throw new Error(`README.md has no sh block under '## ${heading}'`);
  return block;
}
const journeyScript = () => firstBlockUnder("A first backup and restore");

let pg: PgServer;
let daemon: Daemon;

beforeAll(async () => {
  [pg, daemon] = await Promise.all([startPostgres(), startDaemon({ binary: "compiled" })]);
  // Restoring into a new database (step 5) needs a role that may create one, as the README says.
  pg.psql(`ALTER ROLE ${pg.user} CREATEDB`);
  pg.psql(
    `SET ROLE ${pg.user};
     CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2), placed timestamptz DEFAULT now());
     INSERT INTO orders (customer, total) SELECT 'customer ' || g, g * 2.5 FROM generate_series(1, 500) g;`,
    pg.database,
  );
}, 120_000);

afterAll(async () => {
  await daemon?.stop("SIGTERM");
  await pg?.stop();
});

describe("the README journey", () => {
  test("runs as written and ends with a verified restore", async () => {
    // Then "Prove your backups restore", as written, with the variables the journey set.
    const script = `set -euo pipefail\n${journeyScript()}\necho; echo "IDS $DS $JOB $RST"\n${firstBlockUnder("Prove your backups restore")}\n`;
    const bash = Bun.spawn(["bash", "-c", script], {
      cwd: daemon.dataDir,
      env: {
        PATH: process.env.PATH!,
        HOME: daemon.dataDir,
        API: daemon.baseUrl,
        SNAPDB: daemon.cli.join(" "),
        SNAPDB_CONFIG: daemon.configFile,
        SNAPDB_DATA_DIR: daemon.dataDir,
        PGHOST: pg.host,
        PGPORT: String(pg.port),
        PGDATABASE: pg.database,
        PGUSER: pg.user,
        PGPASSWORD: pg.password,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const timer = setTimeout(() => bash.kill("SIGKILL"), 120_000);
    const [out, err] = await Promise.all([new Response(bash.stdout).text(), new Response(bash.stderr).text()]);
    clearTimeout(timer);
    expect({ code: await bash.exited, err }).toEqual({ code: 0, err: "" });
    const [, ds, job, rst] = out.match(/^IDS (\S+) (\S+) (\S+)$/m) ?? [];
    expect(ds).toMatch(/^ds_/);

    const token = await daemon.token("acme");
    const get = async (path: string) => (await fetch(`${daemon.baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` } })).json() as Promise<any>;
    const backup = await get(`/backup-jobs/${job}`);
    expect({ status: backup.status, error: backup.error }).toEqual({ status: "succeeded", error: null });
    expect(backup.format).toMatchObject({ dump: "pg_custom", compression: "zstd", encrypted: true });
    // The compiled binary ran pg_dump | zstd | age > file as a chain of tools, not through itself.
    const succeeded = daemon
      .logs()
      .split("\n")
      .filter((l) => l.includes('"backup succeeded"'));
    expect(succeeded.length).toBeGreaterThan(0);
    expect(succeeded.every((l) => JSON.parse(l).pipeline === "tools-to-file")).toBe(true);
    expect((await get(`/attachments?dataSourceId=${ds}`)).items.length).toBe(1);
    const restore = await get(`/restores/${rst}`);
    expect({ status: restore.status, error: restore.error }).toEqual({ status: "succeeded", error: null });
    const sum = (db: string) => pg.psql(`SELECT count(*), sum(total), md5(string_agg(customer, ',' ORDER BY id)) FROM orders`, db);
    expect(sum("shop_restored")).toBe(sum(pg.database));
    // The download link printed by the journey works without a token.
    const link = out.match(/"url":"([^"]+)"/)?.[1];
    expect(link).toBeTruthy();
    const file = await fetch(link!);
    expect(file.status).toBe(200);
    expect(new Bun.CryptoHasher("sha256").update(new Uint8Array(await file.arrayBuffer())).digest("hex")).toBe(backup.sha256);

    // The drill's verification is the last answer printed, as jq prints it.
    const verification = JSON.parse(out.slice(out.lastIndexOf("\n{") + 1));
    expect(verification).toMatchObject({ status: "passed", fingerprint: true, checks: [{ name: "has orders", ok: true, found: "true" }] });
    expect(verification.rowsCompared).toBe(500);
  });

  test("its wait loop stops on a missing id, an unknown job and a failed run instead of spinning", async () => {
    // Everything the block defines before step 1: API, SNAPDB, TOKEN, auth, wait_for.
    const prelude = journeyScript().split("# 1.")[0]!;
    const token = await daemon.token("acme");
    const source = (await (
      await fetch(`${daemon.baseUrl}/data-sources`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "unreachable", engine: "postgres", host: "127.0.0.1", port: 1, database: "x" }),
      })
    ).json()) as { id: string };
    const dst = (await (await fetch(`${daemon.baseUrl}/storage-destinations/managed/ensure`, { method: "POST", headers: { authorization: `Bearer ${token}` } })).json()) as { id: string };
    const call = (path: string, body: unknown) =>
      fetch(`${daemon.baseUrl}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) }).then(
        (r) => r.json() as Promise<{ id: string }>,
      );
    const policy = await call("/backup-policies", { name: "fails", scheduleCron: "0 3 1 1 *", destinationId: dst.id, retention: { keepLast: 1 }, retries: 0 });
    await call("/attachments", { dataSourceId: source.id, policyId: policy.id });
    const failing = await call("/backup-jobs/run-now", { dataSourceId: source.id, policyId: policy.id });
    for (const [args, said] of [
      [`""`, /no id/],
      ["null", /no id/],
      ["job_00000000000000000000000000", /GET \/backup-jobs\/job_0+ failed/],
      [failing.id, /"status":"failed"/],
    ] as const) {
      const started = Date.now();
      const bash = Bun.spawn(["bash", "-c", `set -uo pipefail\n${prelude}\nwait_for backup-jobs ${args}`], {
        cwd: daemon.dataDir,
        env: { PATH: process.env.PATH!, HOME: daemon.dataDir, API: daemon.baseUrl, SNAPDB: daemon.cli.join(" "), SNAPDB_CONFIG: daemon.configFile, SNAPDB_DATA_DIR: daemon.dataDir },
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => bash.kill("SIGKILL"), 60_000);
      const err = await new Response(bash.stderr).text();
      clearTimeout(timer);
      expect({ args, code: await bash.exited, said: said.test(err) }).toEqual({ args, code: 1, said: true });
      expect(Date.now() - started).toBeLessThan(30_000);
    }
  }, 90_000);
});
