/**
 * install.sh against a staged root (--prefix / DESTDIR): tests cannot start systemd here, so
 * they check what lands where, with which modes, what a second run keeps, what uninstall
 * keeps and purges, and that a non-root run without a prefix is refused. The unit is
 * checked with systemd-analyze (verify, and the offline security exposure).
 */
import { beforeAll, expect, test } from "bun:test";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsFor } from "../../src/config/defaults.ts";
import { leafPaths } from "../../src/config/tree.ts";
import { ensureCompiledBinary, freePort, REPO_ROOT } from "../helpers/daemon.ts";
import { tempDir } from "../helpers/tmp.ts";

let binary: string;
const mode = (p: string) => statSync(p).mode & 0o777;

async function sh(argv: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(argv, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  return { code: await proc.exited, stdout, stderr };
}

const install = (...args: string[]) => sh(["bash", join(REPO_ROOT, "install.sh"), ...args]);

function staged(root: string) {
  return {
    bin: join(root, "usr/local/bin/snapdb"),
    confDir: join(root, "etc/snapdb"),
    conf: join(root, "etc/snapdb/snapdb.toml"),
    data: join(root, "var/lib/snapdb"),
    unit: join(root, "etc/systemd/system/snapdb.service"),
  };
}

beforeAll(async () => {
  binary = await ensureCompiledBinary();
}, 180_000);

test("install.sh is shellcheck-clean", async () => {
  expect(Bun.which("shellcheck")).not.toBeNull(); // scripts/install-test-deps.sh installs it
  const r = await sh(["shellcheck", "install.sh"]);
  expect(r.stdout + r.stderr).toBe("");
  expect(r.code).toBe(0);
});

test("a staged install lays out binary, config, data dir and unit with the right modes", async () => {
  const root = tempDir("snapdb-install");
  try {
    const r = await install("--prefix", root.path, "--binary", binary);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("sudo systemctl enable --now snapdb");
    expect(r.stdout).toContain("sudo -u snapdb snapdb token --config /etc/snapdb/snapdb.toml --org");
    const p = staged(root.path);
    expect(mode(p.bin)).toBe(0o755);
    expect((await sh([p.bin, "version"])).stdout).toStartWith("snapdb ");
    expect(mode(p.confDir)).toBe(0o750);
    expect(mode(p.conf)).toBe(0o640);
    expect(mode(p.data)).toBe(0o700);
    expect(mode(p.unit)).toBe(0o644);
    expect(readFileSync(p.unit, "utf8")).toBe(readFileSync(join(REPO_ROOT, "systemd/snapdb.service"), "utf8"));

    // The written config is what the installed binary reads: the two live keys, defaults else.
    const printed = await sh([p.bin, "serve", "--config", p.conf, "--print-config"], { SNAPDB_DATA_DIR: "", SNAPDB_LISTEN: "" });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain('dataDir = "/var/lib/snapdb"');
    expect(printed.stdout).toContain('listen = "127.0.0.1:8484"');
    // …and it shows every key the daemon knows, so a user finds them all in one place.
    const text = readFileSync(p.conf, "utf8");
    const keys = [...leafPaths(defaultsFor("/x", "local")), ...leafPaths(defaultsFor("/x", "s3")), "managedStorage.region", "managedStorage.bucket"];
    for (const path of new Set(keys)) {
      const parts = path.split(".");
      const key = parts.at(-1)!;
      expect({ path, found: new RegExp(`^(# )?${key} = `, "m").test(text) }).toEqual({ path, found: true });
      if (parts.length === 2) expect({ path, section: text.includes(`# [${parts[0]}]`) }).toEqual({ path, section: true });
    }
  } finally {
    root.cleanup();
  }
}, 60_000);

test("running it twice keeps an edited config and replaces the binary; DESTDIR works like --prefix", async () => {
  const root = tempDir("snapdb-install");
  try {
    expect((await install("--binary", binary, "--prefix", root.path)).code).toBe(0);
    const p = staged(root.path);
    writeFileSync(p.conf, 'dataDir = "/srv/snapdb"\nlisten = "127.0.0.1:9999"\n');
    writeFileSync(p.bin, "#!/bin/sh\necho broken\n");
    mkdirSync(join(p.data, "keep-me"));
    const again = await sh(["bash", join(REPO_ROOT, "install.sh"), "--binary", binary], { DESTDIR: root.path });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("kept");
    expect(readFileSync(p.conf, "utf8")).toBe('dataDir = "/srv/snapdb"\nlisten = "127.0.0.1:9999"\n');
    expect(mode(p.conf)).toBe(0o640);
    expect(statSync(p.bin).size).toBe(statSync(binary).size);
    expect(existsSync(join(p.data, "keep-me"))).toBe(true);
  } finally {
    root.cleanup();
  }
}, 60_000);

test("--uninstall keeps config and data; --uninstall --purge removes them", async () => {
  const root = tempDir("snapdb-install");
  try {
    const p = staged(root.path);
    expect((await install("--prefix", root.path, "--binary", binary)).code).toBe(0);
    writeFileSync(join(p.data, "snapdb.db"), "the store");
    const un = await install("--prefix", root.path, "--uninstall");
    expect(un.code).toBe(0);
    expect(existsSync(p.bin)).toBe(false);
    expect(existsSync(p.unit)).toBe(false);
    expect(readFileSync(join(p.data, "snapdb.db"), "utf8")).toBe("the store");
    expect(existsSync(p.conf)).toBe(true);
    expect((await install("--prefix", root.path, "--uninstall")).code).toBe(0); // idempotent

    expect((await install("--prefix", root.path, "--purge")).stderr).toContain("--purge only goes with --uninstall");
    const purge = await install("--prefix", root.path, "--uninstall", "--purge");
    expect(purge.code).toBe(0);
    expect(existsSync(p.data)).toBe(false);
    expect(existsSync(p.confDir)).toBe(false);
  } finally {
    root.cleanup();
  }
}, 60_000);

test("a downloaded binary must match --sha256", async () => {
  const root = tempDir("snapdb-install");
  try {
    const url = `file://${binary}`;
    const noSum = await install("--prefix", root.path, "--binary", url);
    expect(noSum.code).not.toBe(0);
    expect(noSum.stderr).toContain("needs --sha256");
    const bad = await install("--prefix", root.path, "--binary", url, "--sha256", "0".repeat(64));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("checksum mismatch");
    expect(existsSync(staged(root.path).bin)).toBe(false);
    const sum = new Bun.CryptoHasher("sha256").update(readFileSync(binary)).digest("hex");
    const good = await install("--prefix", root.path, "--binary", url, "--sha256", sum);
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
    expect(statSync(staged(root.path).bin).size).toBe(statSync(binary).size);
  } finally {
    root.cleanup();
  }
}, 60_000);

test("without root: refused with a clear message, unless it is a staged install", async () => {
  // A copy nobody can read and run, wherever the checkout lives.
  const dir = tempDir("snapdb-install-nobody");
  try {
    chmodSync(dir.path, 0o777);
    cpSync(join(REPO_ROOT, "install.sh"), join(dir.path, "install.sh"));
    cpSync(join(REPO_ROOT, "systemd"), join(dir.path, "systemd"), { recursive: true });
    mkdirSync(join(dir.path, "dist"));
    copyFileSync(binary, join(dir.path, "dist/snapdb"));
    chmodSync(join(dir.path, "dist/snapdb"), 0o755);
    const asNobody = (...args: string[]) => sh(["runuser", "-u", "nobody", "--", "bash", join(dir.path, "install.sh"), ...args]);

    const refused = await asNobody();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("must run as root");
    expect(refused.stderr).toContain("--prefix DIR");
    expect((await asNobody("--uninstall")).stderr).toContain("must run as root");

    const root = join(dir.path, "root");
    const ok = await asNobody("--prefix", root);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    const p = staged(root);
    expect(statSync(p.conf).uid).toBe(statSync(p.bin).uid); // owned by nobody: no chown was tried
    expect(mode(p.data)).toBe(0o700);
  } finally {
    dir.cleanup();
  }
}, 60_000);

test("the unit passes systemd-analyze verify and keeps its exposure level low", async () => {
  expect(Bun.which("systemd-analyze")).not.toBeNull(); // Debian package systemd
  const dir = tempDir("snapdb-unit");
  try {
    // verify insists that ExecStart exists: point it at the binary we have, nothing else changes.
    const unit = readFileSync(join(REPO_ROOT, "systemd/snapdb.service"), "utf8");
    expect(unit).toContain("ExecStart=/usr/local/bin/snapdb serve --config /etc/snapdb/snapdb.toml");
    writeFileSync(join(dir.path, "snapdb.service"), unit.replaceAll("/usr/local/bin/snapdb", binary));
    const verify = await sh(["systemd-analyze", "verify", "--man=no", join(dir.path, "snapdb.service")]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);

    // systemd must not SIGKILL the daemon while it still lets jobs checkpoint.
    const stopSec = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)?.[1]);
    const runner = defaultsFor("/x", "local").runner as { shutdownGraceSeconds?: number };
    expect(stopSec).toBeGreaterThanOrEqual((runner.shutdownGraceSeconds ?? 60) + 30);

    const security = await sh(["systemd-analyze", "security", "--offline=yes", "--no-pager", join(REPO_ROOT, "systemd/snapdb.service")]);
    const level = /Overall exposure level for snapdb\.service: ([\d.]+)/.exec(security.stdout);
    expect(level).not.toBeNull();
    expect(Number(level![1])).toBeLessThanOrEqual(2.0);
  } finally {
    dir.cleanup();
  }
}, 60_000);

/**
 * The real thing, as root, without a prefix: in a private mount namespace whose /etc,
 * /var/lib and /usr/local/bin are throwaway copies, so the user, group and files it creates
 * never reach the host. Then the installed daemon runs as that user and mints a token.
 */
const REAL_INSTALL = String.raw`
set -euo pipefail
S=$1; REPO=$2
cp -a /etc "$S/etc"; mkdir -p "$S/varlib" "$S/bin"
mount --bind "$S/etc" /etc; mount --bind "$S/varlib" /var/lib; mount --bind "$S/bin" /usr/local/bin
bash "$REPO/install.sh" --binary "$3" >/dev/null
bash "$REPO/install.sh" --binary "$3" | grep "^kept .*snapdb.toml" >/dev/null
echo "user=$(getent passwd snapdb | cut -d: -f6,7)"
stat -c 'stat=%a %U:%G %n' /etc/snapdb /etc/snapdb/snapdb.toml /var/lib/snapdb /usr/local/bin/snapdb
runuser -u snapdb -- /usr/local/bin/snapdb serve --config /etc/snapdb/snapdb.toml --listen "127.0.0.1:$4" >/dev/null 2>&1 &
runuser -u snapdb -- /usr/local/bin/snapdb ready --config /etc/snapdb/snapdb.toml --listen "127.0.0.1:$4" --timeout 30 >/dev/null
T=$(runuser -u snapdb -- /usr/local/bin/snapdb token --config /etc/snapdb/snapdb.toml --org acme --sub admin)
echo "token=$T"
runuser -u snapdb -- /usr/local/bin/snapdb doctor --config /etc/snapdb/snapdb.toml --listen "127.0.0.1:$4" >/dev/null && echo "doctor=ok"
kill %1; wait || true
stat -c 'stat=%a %U:%G %n' /var/lib/snapdb/master.key
bash "$REPO/install.sh" --uninstall --purge >/dev/null
getent passwd snapdb >/dev/null || echo "user=gone"
[ -e /var/lib/snapdb ] || echo "data=gone"
`;

test("as root: creates the snapdb user, owns files right, and the installed daemon runs as it", async () => {
  expect(process.getuid!()).toBe(0);
  const probe = await sh(["unshare", "-m", "--propagation", "private", "true"]);
  expect({ unshare: probe.code, why: probe.stderr || "needs CAP_SYS_ADMIN for a private mount namespace" }).toMatchObject({ unshare: 0 });
  const dir = tempDir("snapdb-install-real");
  try {
    const port = await freePort();
    const r = await sh(["unshare", "-m", "--propagation", "private", "bash", "-c", REAL_INSTALL, "real-install", dir.path, REPO_ROOT, binary, String(port)]);
    expect(r.stderr.replace(/Session terminated.*\n?/g, "")).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("user=/var/lib/snapdb:/usr/sbin/nologin");
    expect(r.stdout).toContain("stat=750 root:snapdb /etc/snapdb\n");
    expect(r.stdout).toContain("stat=640 root:snapdb /etc/snapdb/snapdb.toml\n");
    expect(r.stdout).toContain("stat=700 snapdb:snapdb /var/lib/snapdb\n");
    expect(r.stdout).toContain("stat=755 root:root /usr/local/bin/snapdb\n");
    expect(r.stdout).toContain("stat=600 snapdb:snapdb /var/lib/snapdb/master.key\n");
    expect(r.stdout).toMatch(/^token=ey[\w-]+\.[\w-]+\.[\w-]+$/m);
    expect(r.stdout).toContain("doctor=ok");
    expect(r.stdout).toContain("user=gone");
    expect(r.stdout).toContain("data=gone");
  } finally {
    dir.cleanup();
  }
  expect((await sh(["getent", "passwd", "snapdb"])).code).not.toBe(0); // the host never saw it
}, 120_000);
