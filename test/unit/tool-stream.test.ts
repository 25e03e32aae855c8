import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readAll } from "../../src/lib/streams.ts";
import { toolInput, toolOutput, ToolFailedError } from "../../src/engines/tool-stream.ts";

const PATH = process.env.PATH ?? "/usr/bin:/bin";

describe("tool streams", () => {
  test("stdout streams through and ends when the tool exits 0", async () => {
    const out = await readAll(toolOutput(["sh", "-c", "head -c 3000000 /dev/zero"], { toolPath: PATH }));
    expect(out.length).toBe(3_000_000);
  });

  test("a non-zero exit errors the stream at its end, with the stderr tail, secrets masked", async () => {
    const stream = toolOutput(["sh", "-c", 'echo partial; echo "login failed for $PGPASSWORD" >&2; exit 3'], {
      toolPath: PATH,
      secretEnv: { PGPASSWORD: "hunter2" },
    });
    const err = await readAll(stream).catch((e) => e);
    expect(err).toBeInstanceOf(ToolFailedError);
    expect(err.code).toBe("DUMP_FAILED");
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain("login failed for ***");
    expect(err.message).not.toContain("hunter2");
  });

  test("the secret goes through the environment, never argv", async () => {
    const out = await readAll(toolOutput(["sh", "-c", 'printf %s "$MYSQL_PWD"; cat /proc/$$/cmdline'], { toolPath: PATH, secretEnv: { MYSQL_PWD: "s3cret" } }));
    const text = out.toString();
    expect(text.startsWith("s3cret")).toBe(true);
    expect(text.slice("s3cret".length)).not.toContain("s3cret");
  });

  test("the child does not inherit the daemon's environment", async () => {
    process.env.SNAPDB_TEST_LEAK = "leaky";
    const out = (await readAll(toolOutput(["sh", "-c", "env"], { toolPath: PATH }))).toString();
    delete process.env.SNAPDB_TEST_LEAK;
    expect(out).not.toContain("leaky");
    expect(out).toContain(`PATH=${PATH}`);
  });

  test("abort kills the tool and fails the stream", async () => {
    const ac = new AbortController();
    const stream = toolOutput(["sh", "-c", "while :; do head -c 65536 /dev/zero; done"], { toolPath: PATH, signal: ac.signal });
    const reader = stream.getReader();
    await reader.read();
    ac.abort();
    let error: unknown = null;
    try {
      for (;;) if ((await reader.read()).done) break;
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ToolFailedError);
  });

  test("a tool that is not read from waits instead of filling memory", async () => {
    const marker = `${tmpdir()}/snapdb-tool-stream-${process.pid}`;
    rmSync(marker, { force: true });
    const stream = toolOutput(["sh", "-c", `head -c 200000000 /dev/zero; touch ${marker}`], { toolPath: PATH });
    const reader = stream.getReader();
    await reader.read();
    await Bun.sleep(500);
    // Unread, the pipe is full and the tool blocks: it has not got to its last command.
    expect(existsSync(marker)).toBe(false);
    await reader.cancel();
  });

  test("toolInput feeds stdin and reports a failing exit", async () => {
    const input = new Blob([Buffer.alloc(1_000_000, 65)]).stream();
    const ok = await toolInput(["sh", "-c", "wc -c"], input, { toolPath: PATH });
    expect(ok.stdout.trim()).toBe("1000000");
    const failing = toolInput(["sh", "-c", "cat >/dev/null; echo broken >&2; exit 1"], new Blob(["x"]).stream(), { toolPath: PATH });
    await expect(failing).rejects.toThrow(/exited with code 1: broken/);
  });

  test("toolInput: an erroring input stream kills the tool and rejects with that error", async () => {
    const input = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(10));
        c.error(new Error("download broke"));
      },
    });
    await expect(toolInput(["sh", "-c", "cat >/dev/null"], input, { toolPath: PATH })).rejects.toThrow("download broke");
  });
});

describe("tools and the daemon's life", () => {
  /** A stand-in daemon: starts `sleep` as a tool, prints its pid, and is then killed with SIGKILL. */
  async function orphanAfterKill9(toolPath: string): Promise<{ guarded: boolean; pid: number }> {
    const dir = mkdtempSync(join(tmpdir(), "death-guard-"));
    const script = join(dir, "daemon.ts");
    const module = join(import.meta.dir, "../../src/engines/tool-stream.ts");
    writeFileSync(
      script,
      `import { guardToolsWithDaemon, toolOutput } from ${JSON.stringify(module)};
       const guarded = await guardToolsWithDaemon(${JSON.stringify(toolPath)});
       const reader = toolOutput(["sh", "-c", "echo $$; exec sleep 600"], { toolPath: ${JSON.stringify(toolPath)} }).getReader();
       const { value } = await reader.read();
       console.log(JSON.stringify({ guarded, pid: Number(new TextDecoder().decode(value).trim()) }));
       await Bun.sleep(600_000);`,
    );
    const daemon = Bun.spawn([process.execPath, script], { stdout: "pipe" });
    const line = (await daemon.stdout.getReader().read()).value!;
    const started = JSON.parse(new TextDecoder().decode(line));
    daemon.kill("SIGKILL");
    await daemon.exited;
    rmSync(dir, { recursive: true, force: true });
    return started;
  }
  /** Running: a killed orphan may stay a zombie for a while if nothing reaps it. */
  const alive = (pid: number) => {
    try {
      return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
    } catch {
      return false;
    }
  };

  test("with setpriv, a tool dies with the daemon even while it does nothing", async () => {
    const { guarded, pid } = await orphanAfterKill9(PATH);
    expect(guarded).toBe(true);
    for (let i = 0; i < 50 && alive(pid); i++) await Bun.sleep(20);
    expect(alive(pid)).toBe(false);
  });

  test("a setpriv that cannot run here (a seccomp filter) is not used: tools still run, unguarded", async () => {
    const bin = mkdtempSync(join(tmpdir(), "bad-setpriv-"));
    // What the systemd unit's filter (SystemCallErrorNumber=EPERM) does to setpriv's capset.
    writeFileSync(join(bin, "setpriv"), "#!/bin/sh\necho 'setpriv: capset failed: Operation not permitted' >&2; exit 1\n", { mode: 0o755 });
    const { guarded, pid } = await orphanAfterKill9(`${bin}:${PATH}`);
    expect(guarded).toBe(false);
    await Bun.sleep(200);
    expect(alive(pid)).toBe(true);
    process.kill(pid, "SIGKILL");
    rmSync(bin, { recursive: true, force: true });
  });
});
