/**
 * The API client commands of the compiled binary against a real daemon (the same binary) and
 * a real PostgreSQL server: `backup --wait` with its progress bar in a pseudo-terminal
 * (util-linux `script`) and its plain lines in a pipe, exit codes and `CODE: message` on
 * failure, `--json` for scripts, verify / download / restore, tokens minted from the
 * daemon's own secret with --org, the completion scripts, and the README's CLI block.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DaemonApi } from "../helpers/daemon-api.ts";
import { REPO_ROOT, startDaemon, type Daemon } from "../helpers/daemon.ts";
import { holdTableLock, startPostgres, type PgServer } from "../helpers/postgres.ts";
import { tempDir } from "../helpers/tmp.ts";

const ORG = "acme";
let pg: PgServer;
let daemon: Daemon;
let api: DaemonApi;
let work: ReturnType<typeof tempDir>;
let shopId: string;
let brokenId: string;
let policyId: string;

/** What a shell on the daemon's host has: its config (here: env) and nothing else. */
function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH!,
    HOME: work.path,
    SNAPDB_CONFIG: daemon.configFile,
    SNAPDB_DATA_DIR: daemon.dataDir,
    SNAPDB_LISTEN: `127.0.0.1:${daemon.port}`,
    ...extra,
  };
}

async function snapdb(args: string[], extra: Record<string, string> = {}, timeoutMs = 120_000) {
  const child = Bun.spawn([...daemon.cli, ...args], { cwd: work.path, env: cliEnv(extra), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  clearTimeout(timer);
  return { code: await child.exited, stdout, stderr };
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The command in a pseudo-terminal: `script` gives it a tty on stdout, as an operator's shell would. */
async function inTerminal(args: string[], extra: Record<string, string> = {}) {
  const cmd = [...daemon.cli, ...args].map(shellQuote).join(" ");
  const child = Bun.spawn(["script", "-qfec", cmd, "/dev/null"], { cwd: work.path, env: { ...cliEnv(extra), TERM: "xterm" }, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const [stdout, stderr] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  clearTimeout(timer);
  return { code: await child.exited, stdout, stderr };
}

beforeAll(async () => {
  work = tempDir("snapdb-cli-client");
  [pg, daemon] = await Promise.all([startPostgres(), startDaemon({ binary: "compiled" })]);
  pg.psql(`ALTER ROLE ${pg.user} CREATEDB`);
  // ~90 MB of dump: a backup runs for a few seconds, long enough to watch its progress.
  pg.psql(`SET ROLE ${pg.user}; CREATE TABLE big AS SELECT g, md5(g::text) || md5((g * 7)::text) AS t FROM generate_series(1, 1200000) g;`, pg.database);
  api = new DaemonApi(daemon.baseUrl, await daemon.token(ORG));
  const dst = await api.managedDestination();
  const policy = await api.createPolicy(dst.id, { retries: 0 });
  policyId = policy.id;
  const target = { engine: "postgres", host: pg.host, port: pg.port, database: pg.database };
  shopId = (await api.createSource({ name: "shop", ...target }, { username: pg.user, password: pg.password })).id;
  brokenId = (await api.createSource({ name: "broken", ...target }, { username: pg.user, password: "not-the-password" })).id;
  await api.attach(shopId, policy.id);
  await api.attach(brokenId, policy.id);
}, 180_000);

afterAll(async () => {
  await daemon?.stop();
  await pg?.stop();
  work?.cleanup();
});

describe("backup --wait", () => {
  /** Runs `fn` while pg_dump waits for a lock on the table for `ms`: a backup that reliably runs that long. */
  async function withSlowDump<T>(ms: number, fn: () => Promise<T>): Promise<T> {
    const release = await holdTableLock(pg, pg.database, "big", "ACCESS EXCLUSIVE");
    const timer = setTimeout(() => void release(), ms);
    try {
      return await fn();
    } finally {
      clearTimeout(timer);
      await release();
    }
  }

  test("without a terminal: plain lines (on a status change, then every 5 s), no redraws, exit 0", async () => {
    const r = await withSlowDump(6500, () => snapdb(["backup", "shop", "--org", ORG, "--wait"]));
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("backing up shop") });
    expect(r.stdout).not.toContain("\r");
    expect(r.stdout).not.toContain("\x1b[");
    const lines = r.stdout.trimEnd().split("\n");
    const running = lines.filter((l) => /^job_\w+ {2}running {2}/.test(l));
    expect(running.length).toBeGreaterThanOrEqual(2);
    expect(running.length).toBeLessThanOrEqual(4);
    expect(lines.at(-1)).toMatch(/^job_\w+ succeeded: [\d.]+ MiB dumped, [\d.]+ MiB stored in \d+:\d\d \(sha256 [0-9a-f]{16}…\)$/);
  }, 180_000);

  test("in a terminal: one line redrawn in place with a percentage and an ETA from the last backup", async () => {
    const r = await withSlowDump(2000, () => inTerminal(["backup", "shop", "--org", ORG, "--wait"]));
    expect(r.code).toBe(0);
    const redraws = r.stdout.split("\r").filter((s) => s.startsWith("running"));
    expect(redraws.length).toBeGreaterThanOrEqual(3);
    const full = /^running {2}\[[=> ]{20}\] {2}\d{1,2}% {2}[\d.]+ (B|KiB|MiB) \/ ~[\d.]+ MiB {2}[\d.]+ (KiB|MiB)\/s {2}elapsed \d+:\d\d {2}ETA \d+:\d\d\x1b\[K$/;
    expect(redraws.filter((s) => full.test(s)).length).toBeGreaterThanOrEqual(1);
    expect(r.stdout).toContain("\x1b[K"); // each redraw erases what the last one left
    expect(r.stdout).toMatch(/job_\w+ succeeded: /);
  }, 180_000);

  test("a failing backup (wrong password) exits 1 with CODE: message on stderr", async () => {
    const r = await snapdb(["backup", "broken", "--org", ORG, "--wait"]);
    expect(r.code).toBe(1);
    const id = r.stderr.match(/as (job_\w+)/)![1]!;
    const job = await api.must("GET", `/backup-jobs/${id}`);
    expect(job.status).toBe("failed");
    expect(r.stderr).toEndWith(`${id} failed: ${job.error.code}: ${job.error.message}\n`);
    expect(job.error.message).toContain("password authentication failed");
    expect(r.stderr).not.toContain("not-the-password");
    // -q: the id alone on stdout (for JOB=$(…)), the failure on stderr, exit 1.
    const quiet = await snapdb(["backup", "broken", "--org", ORG, "--wait", "-q"]);
    expect(quiet.code).toBe(1);
    expect(quiet.stdout).toMatch(/^job_\w+\n$/);
    const quietJob = await api.must("GET", `/backup-jobs/${quiet.stdout.trim()}`);
    expect(quiet.stderr).toBe(`${quietJob.id} failed: ${quietJob.error.code}: ${quietJob.error.message}\n`);
    expect((await snapdb(["backup", "broken", "-q", "--json", "--org", ORG])).code).toBe(2);
  }, 120_000);

  test("--json: the queued job, and with --wait the finished one; --policy runs it with that policy", async () => {
    // Not the policy shop is attached to: the job says which one it ran with.
    const other = await api.createPolicy((await api.managedDestination()).id, { compression: { algorithm: "gzip", level: 1 } });
    const queued = await snapdb(["backup", shopId, "--policy", other.id, "--org", ORG, "--json"]);
    expect(queued.code).toBe(0);
    const job = JSON.parse(queued.stdout);
    const id: string = job.id;
    expect(id).toMatch(/^job_/);
    expect(job).toMatchObject({ dataSourceId: shopId, policyId: other.id, trigger: "manual", status: "queued" });
    expect(await api.waitForStatus(`/backup-jobs/${id}`)).toMatchObject({ status: "succeeded", policyId: other.id, format: { compression: "gzip" } });
    const waited = await snapdb(["backup", "broken", "--org", ORG, "--json", "--wait"]);
    expect(waited.code).toBe(1);
    expect(JSON.parse(waited.stdout)).toMatchObject({ status: "failed", error: { code: expect.any(String) } });
    expect(waited.stderr).toMatch(/^job_\w+ failed: [A-Z_]+: /m);
  }, 120_000);
});

describe("lists, show and --json", () => {
  test("tables by default, the API's JSON with --json", async () => {
    const table = await snapdb(["sources", "--org", ORG]);
    expect(table.code).toBe(0);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID +NAME +ENGINE +WHERE/);
    expect(table.stdout).toMatch(new RegExp(`${shopId} +shop +postgres`));
    expect(table.stdout).toContain("broken");

    const json = await snapdb(["sources", "--org", ORG, "--json"]);
    const page = JSON.parse(json.stdout);
    expect(page).toEqual(await api.must("GET", "/data-sources"));

    const one = JSON.parse((await snapdb(["sources", "show", shopId, "--json", "--org", ORG])).stdout);
    expect(one).toEqual(await api.must("GET", `/data-sources/${shopId}`));

    const jobs = await snapdb(["jobs", "--source", "broken", "--org", ORG]);
    expect(jobs.stdout).toMatch(/failed +manual .* [A-Z_]+: /);
    expect(jobs.stdout).not.toContain(" succeeded ");
    const jobsJson = JSON.parse((await snapdb(["jobs", "--status", "succeeded", "--limit", "1", "--json", "--org", ORG])).stdout);
    expect(jobsJson.items).toHaveLength(1);
    expect(jobsJson.cursors.next).toEqual(expect.any(String));

    for (const cmd of ["policies", "restores"]) {
      const r = await snapdb([cmd, "--json", "--org", ORG]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toHaveProperty("items");
    }
    // policies as a table: the policy's row with its schedule, retention, compression and encryption.
    const policies = await snapdb(["policies", "--org", ORG]);
    expect(policies.code).toBe(0);
    expect(policies.stdout.split("\n")[0]).toMatch(/^ID +NAME +SCHEDULE +ZONE +DESTINATION +KEEP +COMPRESSION +ENCRYPTED$/);
    expect(policies.stdout).toMatch(new RegExp(`^${policyId} +pol-\\w+ +0 3 1 1 \\* +UTC +dst_\\w+ +last 50 +zstd 3 +yes$`, "m"));

    // show without --json: one "key: value" line per field, nested ones dotted.
    const shown = await snapdb(["sources", "show", shopId, "--org", ORG]);
    expect(shown.code).toBe(0);
    const fields = Object.fromEntries(
      shown.stdout
        .trimEnd()
        .split("\n")
        .map((l) => [l.slice(0, l.indexOf(": ")), l.slice(l.indexOf(": ") + 2)]),
    );
    expect(fields).toMatchObject({ id: shopId, name: "shop", engine: "postgres", host: pg.host, port: String(pg.port), database: pg.database });
    expect(shown.stdout).not.toContain(pg.password);
    const failedJob = (await api.must("GET", `/backup-jobs?dataSourceId=${brokenId}&status=failed&limit=1`)).items[0];
    const jobShown = await snapdb(["jobs", "show", failedJob.id, "--org", ORG]);
    expect(jobShown.stdout).toContain(`\nstatus: failed\n`);
    expect(jobShown.stdout).toContain(`\nerror.code: ${failedJob.error.code}\n`);
    expect(jobShown.stdout).toContain(`\nsha256: -\n`);
  }, 60_000);

  test("API errors print CODE: message and exit 1; usage errors exit 2", async () => {
    const missing = await snapdb(["jobs", "show", "job_00000000000000000000000000", "--org", ORG]);
    expect(missing).toMatchObject({ code: 1, stderr: "NOT_FOUND: backup job not found\n" });
    const nameless = await snapdb(["backup", "nope", "--org", ORG]);
    expect(nameless).toMatchObject({ code: 1, stderr: expect.stringMatching(/^NOT_FOUND: no data source named "nope"/) });
    expect((await snapdb(["backup", "--org", ORG])).code).toBe(2);
    expect((await snapdb(["jobs", "--bogus"])).code).toBe(2);
    const tokenless = await snapdb(["sources"]);
    expect(tokenless).toMatchObject({ code: 2, stderr: expect.stringContaining("no token") });
    const badToken = await snapdb(["sources", "--token", "not-a-jwt"]);
    expect(badToken).toMatchObject({ code: 1, stderr: expect.stringMatching(/^UNAUTHENTICATED: /) });
    const down = await snapdb(["sources", "--org", ORG, "--url", "http://127.0.0.1:1"]);
    expect(down).toMatchObject({ code: 1, stderr: expect.stringMatching(/^UNAVAILABLE: cannot reach the daemon at http:\/\/127\.0\.0\.1:1/) });
  }, 60_000);

  test("a token from --token or SNAPDB_TOKEN is used as is, with its scopes", async () => {
    const reader = await daemon.token(ORG, { scopes: ["backup.read"] });
    expect((await snapdb(["sources", "--token", reader])).code).toBe(0);
    expect((await snapdb(["sources"], { SNAPDB_TOKEN: reader })).code).toBe(0);
    const refused = await snapdb(["backup", "shop"], { SNAPDB_TOKEN: reader });
    expect(refused).toMatchObject({ code: 1, stderr: "FORBIDDEN: token lacks the backup.operate scope\n" });
  }, 60_000);

  test("--org needs the daemon's signing secret: elsewhere it says so", async () => {
    const elsewhere = tempDir("snapdb-cli-elsewhere");
    try {
      const r = await snapdb(["sources", "--org", ORG], { SNAPDB_DATA_DIR: elsewhere.path });
      expect(r).toMatchObject({ code: 2, stderr: expect.stringContaining("no signing secret") });
      expect(existsSync(join(elsewhere.path, "jwt-secret"))).toBe(false); // a client never makes one up
    } finally {
      elsewhere.cleanup();
    }
  }, 30_000);
});

describe("verify, download, restore", () => {
  let jobId: string;
  beforeAll(async () => {
    jobId = (await api.must("GET", `/backup-jobs?dataSourceId=${shopId}&status=succeeded&limit=1`)).items[0].id;
  });

  test("verify prints ok and exits 0; --wait also says it is verifying", async () => {
    const r = await snapdb(["verify", jobId, "--org", ORG]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^ok: ${jobId}: [\\d.]+ MiB dump, [\\d.]+ MiB stored, sha256 [0-9a-f]{64}\\n$`));
    const waited = await snapdb(["verify", jobId, "--wait", "--org", ORG]);
    expect({ code: waited.code, stderr: waited.stderr }).toEqual({ code: 0, stderr: "" });
    expect(waited.stdout).toMatch(new RegExp(`^${jobId} {2}verifying {2}elapsed 0:00\\n(.*\\n)*ok: ${jobId}: [\\d.]+ MiB dump, `));
  }, 60_000);

  test("download streams the file, checks its sha256, and never overwrites", async () => {
    const job = await api.must("GET", `/backup-jobs/${jobId}`);
    const r = await snapdb(["download", jobId, "--org", ORG]);
    expect(r.code).toBe(0);
    const name = job.objectKey.split("/").at(-1);
    const file = join(work.path, name);
    expect(r.stdout).toBe(`wrote ${name}: ${r.stdout.split(": ")[1]!.split(",")[0]}, sha256 ${job.sha256} matches the job's\n`);
    expect(statSync(file).size).toBe(job.storedBytes);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(new Bun.CryptoHasher("sha256").update(readFileSync(file)).digest("hex")).toBe(job.sha256);
    expect(existsSync(`${file}.part`)).toBe(false);
    const again = await snapdb(["download", jobId, "--org", ORG]);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringContaining("already exists") });
    // -o -: the bytes on stdout, the report on stderr.
    const child = Bun.spawn([...daemon.cli, "download", jobId, "-o", "-", "--org", ORG], { cwd: work.path, env: cliEnv(), stdout: "pipe", stderr: "pipe" });
    const [bytes, said] = await Promise.all([new Response(child.stdout).arrayBuffer(), new Response(child.stderr).text()]);
    expect(await child.exited).toBe(0);
    expect(new Bun.CryptoHasher("sha256").update(new Uint8Array(bytes)).digest("hex")).toBe(job.sha256);
    expect(said).toContain("matches the job's");
  }, 60_000);

  test("a failed job has no file to download", async () => {
    const failed = (await api.must("GET", `/backup-jobs?dataSourceId=${brokenId}&status=failed&limit=1`)).items[0];
    expect(await snapdb(["download", failed.id, "--org", ORG])).toMatchObject({ code: 1, stderr: expect.stringMatching(/^CONFLICT: job_\w+ is failed/) });
  });

  test("restore --wait into a new database exits 0; over a non-empty one without --clean it is refused", async () => {
    const r = await snapdb(["restore", jobId, "--target-database", "shop_copy", "--wait", "--org", ORG]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("restoring") });
    expect(r.stdout.trimEnd().split("\n").at(-1)).toMatch(/^rst_\w+ succeeded: [\d.]+ MiB read, [\d.]+ MiB restored in /);
    expect(pg.psql("SELECT count(*) FROM big", "shop_copy").trim()).toBe("1200000");
    const refused = await snapdb(["restore", jobId, "--target-database", "shop_copy", "--org", ORG]);
    expect(refused).toMatchObject({ code: 1, stderr: expect.stringMatching(/^CONFLICT: /) });

    // --clean replaces what the backup holds: a row added since is gone afterwards.
    pg.psql(`SET ROLE ${pg.user}; INSERT INTO big VALUES (0, 'added');`, "shop_copy");
    expect(pg.psql("SELECT count(*) FROM big", "shop_copy").trim()).toBe("1200001");
    const clean = await snapdb(["restore", jobId, "--target-database", "shop_copy", "--clean", "--wait", "--org", ORG]);
    expect({ code: clean.code, stderr: clean.stderr }).toEqual({ code: 0, stderr: expect.stringContaining("restoring") });
    const cleanId = clean.stdout.match(/^(rst_\w+) succeeded: /m)?.[1];
    expect(cleanId).toBeTruthy();
    expect(pg.psql("SELECT count(*) FROM big", "shop_copy").trim()).toBe("1200000");

    // restores as a table: the clean one says so.
    const restores = await snapdb(["restores", "--org", ORG]);
    expect(restores.code).toBe(0);
    expect(restores.stdout.split("\n")[0]).toMatch(/^ID +BACKUP JOB +TARGET +DATABASE +STATUS +QUEUED +TOOK +WRITTEN +ERROR$/);
    expect(restores.stdout).toMatch(new RegExp(`^${cleanId} +${jobId} +shop +shop_copy +succeeded \\(clean\\) +\\d{4}-`, "m"));
    expect(restores.stdout).toMatch(new RegExp(`^rst_\\w+ +${jobId} +shop +shop_copy +succeeded +\\d{4}-`, "m"));
  }, 240_000);
});

describe("a stored file that changed under the daemon", () => {
  test("verify prints the failure and exits 1; download refuses it and keeps nothing", async () => {
    const job = await api.backupNow(shopId);
    expect(job.status).toBe("succeeded");
    // Flip one byte of the stored file, in place (same size): only the sha256 can tell.
    const found = Bun.spawnSync(["find", join(daemon.dataDir, "managed"), "-name", `${job.id}.*`])
      .stdout.toString()
      .trim()
      .split("\n");
    expect(found).toHaveLength(1);
    const bytes = readFileSync(found[0]!);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(found[0]!, bytes);

    const verify = await snapdb(["verify", job.id, "--org", ORG]);
    expect(verify).toMatchObject({ code: 1, stdout: "", stderr: expect.stringMatching(/^failed: [A-Z_]+: .+\n$/) });
    const download = await snapdb(["download", job.id, "-o", "tampered.bin", "--org", ORG]);
    expect(download.code).toBe(1);
    expect(download.stderr).toMatch(/^CHECKSUM_MISMATCH: got \d+ bytes with sha256 [0-9a-f]{64}; the job recorded \d+ bytes with sha256 /);
    expect(download.stderr).toContain(job.sha256);
    expect(existsSync(join(work.path, "tampered.bin"))).toBe(false);
    expect(existsSync(join(work.path, "tampered.bin.part"))).toBe(false);
  }, 120_000);
});

describe('a whole-server backup (database "*"): one file per database, named with --part', () => {
  let job: any;
  beforeAll(async () => {
    // A superuser for the globals (roles), and one small database: the big ones stay out.
    pg.psql(`CREATE ROLE snap_admin SUPERUSER LOGIN PASSWORD 'admin-pw-1'; CREATE DATABASE tiny;`);
    pg.psql(`CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g;`, "tiny");
    const source = await api.createSource(
      { name: "server", engine: "postgres", host: pg.host, port: pg.port, database: "*", excludeDatabases: ["postgres", pg.database, "shop_copy"] },
      { username: "snap_admin", password: "admin-pw-1" },
    );
    await api.attach(source.id, policyId);
    job = await api.backupNow(source.id);
    expect(job.status).toBe("succeeded");
    expect(job.sha256).toBeNull();
    expect(job.parts.map((p: any) => p.name).sort()).toEqual([":globals", "tiny"]);
  }, 120_000);

  test("download and verify without --part list the parts (exit 2); with --part they fetch and check that file", async () => {
    for (const cmd of ["download", "verify"]) {
      const r = await snapdb([cmd, job.id, "--org", ORG]);
      expect({ cmd, code: r.code, stdout: r.stdout }).toEqual({ cmd, code: 2, stdout: "" });
      expect(r.stderr).toContain(`${job.id} is a whole-server backup of 2 files, one per database and one for the globals: name one with --part NAME.`);
      expect(r.stderr).toMatch(/Its parts: (:globals, tiny|tiny, :globals)\n/);
      expect(r.stderr).toContain(`e.g. snapdb ${cmd} ${job.id} --part `);
    }
    const unknown = await snapdb(["download", job.id, "--part", "nope", "--org", ORG]);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining(`${job.id} has no part "nope"; its parts: `) });

    const part = job.parts.find((p: any) => p.name === "tiny");
    const fetched = await snapdb(["download", job.id, "--part", "tiny", "--org", ORG]);
    expect({ code: fetched.code, stderr: fetched.stderr }).toEqual({ code: 0, stderr: "" });
    const name = `${job.id}-${part.objectKey.split("/").at(-1)}`;
    expect(fetched.stdout).toStartWith(`wrote ${name}: `);
    expect(fetched.stdout).toEndWith(`sha256 ${part.sha256} matches the job's\n`);
    const bytes = readFileSync(join(work.path, name));
    expect(bytes.length).toBe(part.storedBytes);
    expect(new Bun.CryptoHasher("sha256").update(bytes).digest("hex")).toBe(part.sha256);

    const verified = await snapdb(["verify", job.id, "--part", ":globals", "--wait", "--org", ORG]);
    expect({ code: verified.code, stderr: verified.stderr }).toEqual({ code: 0, stderr: "" });
    const globals = job.parts.find((p: any) => p.name === ":globals");
    expect(verified.stdout).toStartWith(`${job.id} (part :globals)  verifying  elapsed 0:00\n`);
    expect(verified.stdout.trimEnd().split("\n").at(-1)).toMatch(new RegExp(`^ok: ${job.id} \\(part :globals\\): [\\d.]+ (B|KiB) dump, [\\d.]+ (B|KiB) stored, sha256 ${globals.sha256}$`));
  }, 120_000);

  test("--part on a one-file backup is refused", async () => {
    const one = (await api.must("GET", `/backup-jobs?dataSourceId=${shopId}&status=succeeded&limit=1`)).items[0];
    for (const cmd of ["download", "verify"]) {
      const r = await snapdb([cmd, one.id, "--part", "x", "--org", ORG]);
      expect(r).toMatchObject({ code: 2, stderr: expect.stringContaining(`${one.id} is one file, not a whole-server backup: leave --part out`) });
    }
  }, 60_000);
});

describe("shell completion", () => {
  test("bash, zsh and fish parse the scripts, which list the commands and flags", async () => {
    const bash = await snapdb(["completion", "bash"]);
    expect(bash.code).toBe(0);
    for (const word of ["backup", "restore", "verify", "download", "ui-link", "--wait", "--target-database", "--json", "--part"]) expect(bash.stdout).toContain(word);
    const file = join(work.path, "snapdb.bash");
    writeFileSync(file, bash.stdout);
    expect(Bun.spawnSync(["bash", "-n", file]).exitCode).toBe(0);
    // The function completes for real: commands first, then a command's flags.
    const complete = (line: string) => {
      const words = line.split(" ");
      const script = `source ${shellQuote(file)}; COMP_WORDS=(${words.map(shellQuote).join(" ")}); COMP_CWORD=${words.length - 1}; _snapdb; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return Bun.spawnSync(["bash", "-c", script]).stdout.toString().trim().split("\n");
    };
    expect(complete("snapdb ba")).toEqual(["backup"]);
    expect(complete("snapdb backup --w")).toEqual(["--wait"]);
    expect(complete("snapdb download --pa")).toEqual(["--part"]);
    expect(complete("snapdb verify --")).toEqual(expect.arrayContaining(["--part", "--wait", "--json"]));
    expect(complete("snapdb completion z")).toEqual(["zsh"]);
    for (const shell of ["zsh", "fish"]) {
      const r = await snapdb(["completion", shell]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("ui-link");
      // scripts/install-test-deps.sh installs both shells: a missing one fails, it is not skipped.
      const path = Bun.which(shell);
      expect({ shell, installed: path !== null }).toEqual({ shell, installed: true });
      const f = join(work.path, `snapdb.${shell}`);
      writeFileSync(f, r.stdout);
      expect(Bun.spawnSync([path!, "-n", f]).exitCode).toBe(0);
    }
    expect((await snapdb(["completion", "tcsh"])).code).toBe(2);
  });
});

describe("the README", () => {
  /** The sh block of "The CLI and the dashboard", as the README prints it. */
  function cliBlock(): string {
    const section = readFileSync(join(REPO_ROOT, "README.md"), "utf8").split("## The CLI and the dashboard")[1];
    const block = section?.match(/```sh\n([\s\S]*?)```/)?.[1];
    if (!block) throw new Error("README.md has no sh block under '## The CLI and the dashboard'");
    return block;
  }

  test("its four CLI commands (no more) run as written, with snapdb on PATH", async () => {
    const commands = cliBlock()
      .split("\n")
      .filter((l) => /^\s*(\w+=\$\()?snapdb /.test(l));
    expect(commands.length).toBe(4);
    expect(cliBlock()).not.toContain("jq");
    const bin = join(work.path, "bin");
    mkdirSync(bin, { recursive: true });
    if (!existsSync(join(bin, "snapdb"))) symlinkSync(daemon.cli[0]!, join(bin, "snapdb"));
    const dir = tempDir("snapdb-readme-cli");
    try {
      const bash = Bun.spawn(["bash", "-c", `set -euo pipefail\n${cliBlock()}\necho "JOB $JOB"`], {
        cwd: dir.path,
        env: cliEnv({ PATH: `${bin}:${process.env.PATH}` }),
        stdout: "pipe",
        stderr: "pipe",
      });
      const timer = setTimeout(() => bash.kill("SIGKILL"), 150_000);
      const [out, err] = await Promise.all([new Response(bash.stdout).text(), new Response(bash.stderr).text()]);
      clearTimeout(timer);
      expect({ code: await bash.exited, err }).toEqual({ code: 0, err: "" });
      const job = out.match(/^JOB (job_\w+)$/m)?.[1];
      expect(job).toBeTruthy();
      expect(out).toMatch(/^ok: job_/m);
      const stored = await api.must("GET", `/backup-jobs/${job}`);
      expect(new Bun.CryptoHasher("sha256").update(readFileSync(join(dir.path, "shop.dump.zst.age"))).digest("hex")).toBe(stored.sha256);
    } finally {
      dir.cleanup();
    }
  }, 180_000);
});
