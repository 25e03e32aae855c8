import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { attach, backupNow, createPolicy, createSource, managedDestination, must, waitForStatus } from "../helpers/api-flow.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { startMariaDb, type MariaDbServer } from "../helpers/mariadb.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";

/**
 * A tenant's `database`, `host` and user name reach pg_dump, pg_restore, mariadb-dump and
 * the mariadb client. pg_dump and pg_restore read `--dbname` as a connection string when it
 * holds `=` or starts with `postgresql://`: a data source's database written that way used
 * to make them connect to another database (or host, or user). Replayed against a real
 * PostgreSQL and MariaDB through the API; the stored dump files are read back to see which
 * database was really dumped.
 */
let h: Harness;
let pg: PgServer;
let maria: MariaDbServer;
let token: string;
let plainPolicy: string;
const ORG = "org_conninfo";

/** A database the tenant's role may read, but which no data source of theirs names. */
const MARKER = "marker_only_in_otherdb";

const managedFile = (key: string) => join(h.config.managedStorage.type === "local" ? h.config.managedStorage.path : "", key);

function pgList(key: string): string {
  const r = Bun.spawnSync([join(pg.binDir, "pg_restore"), "--list", managedFile(key)], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`pg_restore --list failed: ${r.stderr}`);
  return r.stdout.toString();
}

/** psql's `-d` reads conninfo too: the helper gets the name inside a quoted conninfo value. */
const inDb = (name: string) => `dbname='${name.replace(/[\\']/g, (c) => `\\${c}`)}'`;

const pgCreds = () => ({ username: pg.user, password: pg.password });
const mariaCreds = () => ({ username: maria.user, password: maria.password });
const pgSource = (database: string) => ({ engine: "postgres", host: pg.host, port: pg.port, database });
const mariaSource = (database: string) => ({ engine: "mariadb", host: maria.host, port: maria.port, database });

/** Creates the source (or returns the 400) and, if created, backs it up once. */
async function attempt(body: Record<string, unknown>, creds: { username: string; password: string }) {
  const res = await h.call("POST", "/data-sources", { token, body: { name: `inj-${crypto.randomUUID().slice(0, 8)}`, ...body } });
  if (res.status === 400) return { refused: res.body, job: null };
  expect(res.status).toBe(201);
  await must(h, token, "PUT", `/data-sources/${res.body.id}/credentials`, creds, 204);
  await attach(h, token, res.body.id, plainPolicy);
  return { refused: null, job: await backupNow(h, token, res.body.id), source: res.body };
}

beforeAll(async () => {
  [pg, maria] = await Promise.all([startPostgres(), startMariaDb()]);
  h = await createHarness();
  await h.runner.start();
  token = await h.token(ORG);
  const managed = await managedDestination(h, token);
  // Neither compressed nor encrypted: the stored file is the dump tool's own output.
  plainPolicy = (await createPolicy(h, token, managed.id, { compression: { algorithm: "none", level: 0 }, encryption: { enabled: false, recipients: [] } })).id;

  pg.psql(`CREATE DATABASE otherdb;`);
  // Readable and writable by everyone: had the tools connected there, nothing would have stopped them.
  pg.psql(
    `CREATE TABLE ${MARKER} (secret text); INSERT INTO ${MARKER} VALUES ('not yours'); GRANT SELECT ON ${MARKER} TO PUBLIC;
    GRANT CREATE ON SCHEMA public TO PUBLIC;`,
    "otherdb",
  );
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE own_table (id int); INSERT INTO own_table VALUES (1), (2);`, pg.database);
  // Databases literally named like the attacks, owned by the tenant's role.
  pg.psql(`CREATE DATABASE "dbname=otherdb" OWNER ${pg.user}; CREATE DATABASE "host=${pg.host} dbname=otherdb" OWNER ${pg.user};
    CREATE DATABASE "we'ird db\\ ✓" OWNER ${pg.user}; CREATE DATABASE "we'ird copy" OWNER ${pg.user};`);
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE literal_marker (id int);`, inDb("dbname=otherdb"));
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE odd_table (v text); INSERT INTO odd_table VALUES ('quote '' and backslash \\ ✓');`, inDb("we'ird db\\ ✓"));

  maria.sql(`GRANT ALL ON *.* TO '${maria.user}'@'127.0.0.1'; GRANT ALL ON *.* TO '${maria.user}'@'localhost'; FLUSH PRIVILEGES;
    CREATE DATABASE otherdb; CREATE TABLE otherdb.${MARKER} (secret text);
    CREATE DATABASE \`-hfoo\`; CREATE TABLE \`-hfoo\`.dash_table (id int);
    CREATE DATABASE \`we'ird db\`; CREATE TABLE \`we'ird db\`.odd_table (v text); INSERT INTO \`we'ird db\`.odd_table VALUES ('it''s odd');
    CREATE DATABASE \`we'ird copy\`;`);
}, 120_000);

afterAll(async () => {
  await h?.runner.stop(1000);
  h?.close();
  await Promise.all([pg?.stop(), maria?.stop()]);
});

describe("PostgreSQL: a database name is only ever a name", () => {
  test("`dbname=otherdb` dumps the database literally named so, never otherdb", async () => {
    const { refused, job } = await attempt(pgSource("dbname=otherdb"), pgCreds());
    expect(refused).toBeNull();
    expect(job.error).toBeNull();
    expect(job.status).toBe("succeeded");
    const listing = pgList(job.objectKey);
    expect(listing).toContain("TABLE public literal_marker");
    expect(listing).not.toContain(MARKER);
  });

  test("a postgresql:// URI, other conninfo keys and an option-looking name never reach another database", async () => {
    const variants = [
      `postgresql://${pg.user}@${pg.host}:${pg.port}/otherdb`,
      `postgres://${pg.host}:${pg.port}/otherdb`,
      `dbname=otherdb host=${pg.socketDir} user=postgres`,
      "-hsomewhere",
      "--dbname=otherdb",
    ];
    for (const database of variants) {
      const { refused, job } = await attempt(pgSource(database), pgCreds());
      if (refused) {
        expect(refused.code).toBe("INVALID_INPUT");
        continue;
      }
      // No database has that literal name: the dump fails, naming it.
      expect(job.status, database).toBe("failed");
      expect(job.error.message).toContain(`database "${database}" does not exist`);
    }
  });

  test("a name with quotes, a backslash, a space and unicode backs up and restores", async () => {
    const { job } = await attempt(pgSource("we'ird db\\ ✓"), pgCreds());
    expect(job.status).toBe("succeeded");
    expect(pgList(job.objectKey)).toContain("TABLE public odd_table");
    const copy = await createSource(h, token, pgSource("we'ird copy"), pgCreds());
    const done = await waitForStatus(h, token, `/restores/${(await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: copy.id }, 202)).id}`);
    expect(done.error).toBeNull();
    expect(done.status).toBe("succeeded");
    expect(pg.psql("SELECT v FROM odd_table;", inDb("we'ird copy")).trim()).toBe("quote ' and backslash \\ ✓");
  });

  test("a restore never lands in another database: not through the target's database, not through targetDatabase", async () => {
    const { job } = await attempt(pgSource(pg.database), pgCreds());
    expect(job.status).toBe("succeeded");
    // The target data source names a database that is empty, so the restore is accepted…
    const target = await createSource(h, token, pgSource(`host=${pg.host} dbname=otherdb`), pgCreds());
    const queued = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: target.id }, 202);
    const done = await waitForStatus(h, token, `/restores/${queued.id}`);
    expect(done.status).toBe("succeeded");
    // …and it went into that database, not into otherdb.
    expect(pg.psql("SELECT count(*) FROM own_table;", inDb(`host=${pg.host} dbname=otherdb`)).trim()).toBe("2");
    expect(pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'own_table';", "otherdb").trim()).toBe("0");

    for (const targetDatabase of ["dbname=otherdb", `postgresql://${pg.host}/otherdb`, "-dotherdb", "other db"]) {
      const res = await h.call("POST", "/restores", { token, body: { backupJobId: job.id, targetDatabase } });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("INVALID_INPUT");
      expect(res.body.details[0].path).toBe("/targetDatabase");
    }
    expect(pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'own_table';", "otherdb").trim()).toBe("0");
  });
});

describe("hosts and user names are refused or taken literally", () => {
  test("a socket directory, an abstract socket or an option as host → 400 /host", async () => {
    for (const host of ["/run/postgresql", pg.socketDir, "@snapdb", "-hsomewhere", "--host=127.0.0.1", "127.0.0.1 port=1", "db host"]) {
      const res = await h.call("POST", "/data-sources", { token, body: { name: `h-${crypto.randomUUID().slice(0, 8)}`, engine: "postgres", host, database: "appdb" } });
      expect(res.status, host).toBe(400);
      expect(res.body.code).toBe("INVALID_INPUT");
      expect(res.body.details.map((d: { path: string }) => d.path)).toContain("/host");
    }
  });

  test("control characters in a database or user name → 400 with the field's path", async () => {
    const res = await h.call("POST", "/data-sources", { token, body: { name: "ctl", engine: "mariadb", host: "127.0.0.1", database: "x\nDROP TABLE t;" } });
    expect(res.status).toBe(400);
    expect(res.body.details[0].path).toBe("/database");
    const ok = await createSource(h, token, pgSource(pg.database));
    const bad = await h.call("PUT", `/data-sources/${ok.id}/credentials`, { token, body: { username: "u\u0000ser", password: "x" } });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("INVALID_INPUT");
    expect(JSON.stringify(bad.body.details)).toContain("username");
  });

  test("a user name in conninfo form logs in as that literal name, not as another role", async () => {
    const { job } = await attempt(pgSource(pg.database), { username: `${pg.user}' dbname='otherdb`, password: pg.password });
    expect(job.status).toBe("failed");
    expect(job.error.code).toBe("DUMP_FAILED");
    expect(job.error.message).toContain(`user "${pg.user}' dbname='otherdb"`);
  });
});

describe("MariaDB: database names starting with `-` or holding quotes stay names", () => {
  const mariaText = (key: string) => readFileSync(managedFile(key), "utf8");

  test("a database named `-hfoo` is dumped as itself (not read as an option)", async () => {
    const { job } = await attempt(mariaSource("-hfoo"), mariaCreds());
    expect(job.error).toBeNull();
    const dump = mariaText(job.objectKey);
    expect(dump).toContain("CREATE TABLE `dash_table`");
    expect(dump).not.toContain(MARKER);
  });

  test("`--all-databases` as a name is a missing database, not an option", async () => {
    const { job } = await attempt(mariaSource("--all-databases"), mariaCreds());
    expect(job.status).toBe("failed");
    expect(job.error.message).toContain("Unknown database '--all-databases'");
  });

  test("`we'ird db` backs up and restores into `we'ird copy`", async () => {
    const { job } = await attempt(mariaSource("we'ird db"), mariaCreds());
    expect(job.status).toBe("succeeded");
    const copy = await createSource(h, token, mariaSource("we'ird copy"), mariaCreds());
    const queued = await must(h, token, "POST", "/restores", { backupJobId: job.id, targetDataSourceId: copy.id }, 202);
    const done = await waitForStatus(h, token, `/restores/${queued.id}`);
    expect(done.error).toBeNull();
    expect(maria.sql("SELECT v FROM odd_table;", "we'ird copy").trim()).toBe("it's odd");
    expect(maria.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'otherdb';").trim()).toBe("1");
  });
});
