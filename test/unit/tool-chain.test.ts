import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { removeStaleScratch } from "../../src/engines/dump.ts";
import { bytesReadBy } from "../../src/engines/process.ts";
import { toolChain, toolChainFed, toolChainInto, type ChainLink } from "../../src/engines/tool-chain.ts";
import { ToolFailedError } from "../../src/engines/tool-stream.ts";
import { readAll } from "../../src/lib/streams.ts";
import { tempDir } from "../helpers/tmp.ts";

const PATH = process.env.PATH!;
const sh = (script: string, errorCode: ChainLink["errorCode"] = "DUMP_FAILED", secretEnv?: Record<string, string>): ChainLink => ({
  argv: ["sh", "-c", script],
  errorCode,
  secretEnv,
});
/** This process's fds that lead into `dir` (a FIFO end keeps its path, marked deleted). */
const fdsInto = (dir: string) =>
  readdirSync("/proc/self/fd").filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
    } catch {
      return false;
    }
  });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function chain(links: ChainLink[], signal?: AbortSignal) {
  const dir = tempDir("chain");
  const stream = await toolChain(links, { toolPath: PATH, pipeDir: dir.path, signal });
  return { stream: stream!, dir };
}

async function failureOf(stream: ReadableStream<Uint8Array>): Promise<ToolFailedError> {
  const err = await readAll(stream).then(
    () => null,
    (e) => e,
  );
  expect(err).toBeInstanceOf(ToolFailedError);
  return err as ToolFailedError;
}

describe("tool chains", () => {
  test("tools are joined by one OS pipe each, like a shell pipeline; no FIFO or fd is left behind", async () => {
    const { stream, dir } = await chain([
      sh("readlink /proc/self/fd/1 >&2; head -c 3000000 /dev/zero"),
      sh("readlink /proc/self/fd/0 >&2; wc -c", "COMPRESSION_FAILED"),
      sh("cat; readlink /proc/self/fd/0", "ENCRYPTION_FAILED"),
    ]);
    expect(readdirSync(dir.path)).toEqual([]);
    const out = (await readAll(stream)).toString().trim().split("\n");
    expect(out[0]).toBe("3000000");
    // The last tool's stdin is not the daemon's: it is the pipe from the tool before.
    expect(out[1]).not.toMatch(/^socket:/);
    expect(fdsInto(dir.path)).toEqual([]);
    dir.cleanup();
  });

  test("the first tool's stdout is the second tool's stdin", async () => {
    const { stream, dir } = await chain([sh("readlink /proc/self/fd/1"), sh("cat; readlink /proc/self/fd/0", "COMPRESSION_FAILED")]);
    const [written, read] = (await readAll(stream)).toString().trim().split("\n");
    expect(written).toBe(read!);
    dir.cleanup();
  });

  test("an upstream tool that fails is the cause, though the tools after it exit 0", async () => {
    const { stream, dir } = await chain([sh('echo partial; echo "login failed for $PGPASSWORD" >&2; exit 3', "DUMP_FAILED", { PGPASSWORD: "s3cret" }), sh("cat", "COMPRESSION_FAILED")]);
    const err = await failureOf(stream);
    expect(err.code).toBe("DUMP_FAILED");
    expect(err.exitCode).toBe(3);
    expect(err.message).toContain("login failed for ***");
    expect(err.message).not.toContain("s3cret");
    dir.cleanup();
  });

  test("a downstream tool that dies is the cause, not the broken pipe it leaves upstream", async () => {
    const { stream, dir } = await chain([
      sh("exec cat /dev/zero"),
      sh("head -c 100000 >/dev/null; echo 'zstd: error 11 : out of memory' >&2; kill -9 $$", "COMPRESSION_FAILED"),
      sh("cat", "ENCRYPTION_FAILED"),
    ]);
    const err = await failureOf(stream);
    expect(err.code).toBe("COMPRESSION_FAILED");
    expect(err.signalCode).toBe("SIGKILL");
    expect(err.message).toContain("out of memory");
    dir.cleanup();
  });

  test("a failed tool takes down the tools before it, even one that is not writing", async () => {
    const dir = tempDir("chain-waiting");
    const { stream, dir: pipes } = await chain([
      sh(`echo $$ > ${dir.path}/a; exec sleep 600`),
      sh(`while [ ! -s ${dir.path}/a ]; do sleep 0.01; done; echo 'zstd: error 70 : Write error' >&2; exit 1`, "COMPRESSION_FAILED"),
    ]);
    const err = await failureOf(stream);
    expect(err.code).toBe("COMPRESSION_FAILED");
    const sleeper = Number(readFileSync(join(dir.path, "a"), "utf8"));
    for (let i = 0; i < 100 && alive(sleeper); i++) await Bun.sleep(20);
    expect(alive(sleeper)).toBe(false);
    dir.cleanup();
    pipes.cleanup();
  });

  test("abort kills every tool of the chain and fails the stream", async () => {
    const dir = tempDir("chain-pids");
    const ac = new AbortController();
    const { stream, dir: pipes } = await chain([sh(`echo $$ > ${dir.path}/a; while :; do head -c 65536 /dev/zero; done`), sh(`echo $$ > ${dir.path}/b; exec cat`, "COMPRESSION_FAILED")], ac.signal);
    const reader = stream.getReader();
    await reader.read();
    for (let i = 0; i < 100 && !existsSync(join(dir.path, "b")); i++) await Bun.sleep(20);
    const pids = ["a", "b"].map((n) => Number(readFileSync(join(dir.path, n), "utf8")));
    ac.abort();
    const failed = await (async () => {
      for (;;) if ((await reader.read()).done) return false;
    })().catch(() => true);
    expect(failed).toBe(true);
    for (let i = 0; i < 100 && pids.some(alive); i++) await Bun.sleep(20);
    expect(pids.filter(alive)).toEqual([]);
    dir.cleanup();
    pipes.cleanup();
  });

  test("a chain nobody reads waits (the pipes fill) instead of filling memory; cancel kills it", async () => {
    const dir = tempDir("chain-slow");
    const marker = join(dir.path, "done");
    const { stream, dir: pipes } = await chain([sh(`echo $$ > ${dir.path}/a; head -c 200000000 /dev/zero; touch ${marker}`), sh(`echo $$ > ${dir.path}/b; exec cat`, "COMPRESSION_FAILED")]);
    await Bun.sleep(500);
    expect(existsSync(marker)).toBe(false);
    const pids = ["a", "b"].map((n) => Number(readFileSync(join(dir.path, n), "utf8")));
    expect(pids.filter(alive)).toEqual(pids);
    await stream.cancel();
    for (let i = 0; i < 100 && pids.some(alive); i++) await Bun.sleep(20);
    expect(pids.filter(alive)).toEqual([]);
    dir.cleanup();
    pipes.cleanup();
  });

  test("a cancel without an abort (a failed upload) gives a tool that ends slowly on SIGTERM its moment, though the tools after it died at once", async () => {
    // The first tool stands for pg_dump, which answers SIGTERM by canceling its query on the
    // server first; the second (zstd, age) dies of SIGTERM at once, and its exit must not
    // make the chain SIGKILL the first before its handler is done.
    const dir = tempDir("chain-term");
    const marker = join(dir.path, "canceled");
    const { stream, dir: pipes } = await chain([
      sh(`trap 'sleep 0.3; touch ${marker}; exit 143' TERM; echo $$ > ${dir.path}/a; while :; do sleep 0.05; done`),
      sh(`echo $$ > ${dir.path}/b; exec cat`, "COMPRESSION_FAILED"),
    ]);
    const pidOf = (n: string) => (existsSync(join(dir.path, n)) ? Number(readFileSync(join(dir.path, n), "utf8").trim()) : 0);
    for (let i = 0; i < 100 && !(pidOf("a") > 0 && pidOf("b") > 0); i++) await Bun.sleep(20);
    const pids = ["a", "b"].map(pidOf);
    await stream.cancel();
    for (let i = 0; i < 150 && pids.some(alive); i++) await Bun.sleep(20);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(marker)).toBe(true);
    dir.cleanup();
    pipes.cleanup();
  });

  test("at start, the pipe directories, age probes and SQLite snapshots a killed daemon left are removed, nothing else", () => {
    const scratch = tempDir("scratch");
    mkdirSync(join(scratch.path, "age-probe-abc123"));
    writeFileSync(join(scratch.path, "age-probe-abc123", "probe.age"), "x");
    mkdirSync(join(scratch.path, "pipe-abc123"));
    execFileSync("mkfifo", [join(scratch.path, "pipe-abc123", "fifo")]);
    writeFileSync(join(scratch.path, "sqlite-snapshot-1.db"), "data");
    writeFileSync(join(scratch.path, "other"), "keep");
    expect(removeStaleScratch(scratch.path)).toBe(1);
    expect(readdirSync(scratch.path)).toEqual(["other"]);
    scratch.cleanup();
  });

  test("the live count of a tool's input comes from /proc: what it has read so far", async () => {
    const proc = Bun.spawn(["cat"], { stdin: "pipe", stdout: "ignore" });
    proc.stdin.write(new Uint8Array(3_000_000));
    await proc.stdin.flush();
    let read = 0;
    for (let i = 0; i < 100 && read < 3_000_000; i++, await Bun.sleep(20)) read = bytesReadBy(proc.pid) ?? 0;
    // rchar also counts the few KiB the loader reads at start.
    expect(read).toBeGreaterThanOrEqual(3_000_000);
    expect(read).toBeLessThan(3_000_000 + 64 * 1024);
    proc.stdin.end();
    await proc.exited;
    expect(bytesReadBy(proc.pid)).toBeNull();
  });

  test("into a file: the last tool writes the caller's fd itself; done only when every tool exited 0", async () => {
    const dir = tempDir("chain-into");
    const file = join(dir.path, "out");
    const fd = openSync(file, "w+", 0o600);
    const chained = await toolChainInto([sh("head -c 3000000 /dev/zero"), sh("wc -c; readlink /proc/self/fd/1", "COMPRESSION_FAILED")], { toolPath: PATH, pipeDir: dir.path }, fd);
    await chained!.finished;
    closeSync(fd);
    expect(readFileSync(file, "utf8").trim().split("\n")).toEqual(["3000000", file]);
    expect(fdsInto(join(dir.path, "pipe-"))).toEqual([]);
    dir.cleanup();
  });

  test("into a file: a failure rejects with the downstream-most failing tool", async () => {
    const dir = tempDir("chain-into-fail");
    const fd = openSync(join(dir.path, "out"), "w+", 0o600);
    const chained = await toolChainInto(
      [sh("exec cat /dev/zero"), sh("head -c 100000 >/dev/null; echo 'zstd: error 11' >&2; exit 11", "COMPRESSION_FAILED"), sh("cat", "ENCRYPTION_FAILED")],
      { toolPath: PATH, pipeDir: dir.path },
      fd,
    );
    const err = await chained!.finished.catch((e) => e);
    closeSync(fd);
    expect(err).toBeInstanceOf(ToolFailedError);
    expect(err.code).toBe("COMPRESSION_FAILED");
    expect(err.exitCode).toBe(11);
    dir.cleanup();
  });

  test("without mkfifo on the tools' PATH there is no chain (the caller relays through the daemon)", async () => {
    const bin = tempDir("no-mkfifo");
    symlinkSync(Bun.which("sh")!, join(bin.path, "sh"));
    expect(await toolChain([sh("true"), sh("cat")], { toolPath: bin.path, pipeDir: bin.path })).toBeNull();
    bin.cleanup();
  });
});

describe("fed tool chains (restores)", () => {
  async function fed(links: ChainLink[], signal?: AbortSignal) {
    const dir = tempDir("fed");
    const chain = await toolChainFed(links, { toolPath: PATH, pipeDir: dir.path, signal });
    return { chain: chain!, dir };
  }

  test("the daemon's bytes reach the first tool through an OS pipe and flow through the chain", async () => {
    const out = tempDir("fed-out");
    const { chain, dir } = await fed([sh("readlink /proc/self/fd/0 > " + join(out.path, "in") + "; exec cat", "RESTORE_FAILED"), sh(`cat > ${join(out.path, "data")}`, "RESTORE_FAILED")]);
    const chunk = new Uint8Array(1 << 20).fill(7);
    for (let i = 0; i < 5; i++) await chain.write(chunk);
    await chain.end();
    await chain.finished;
    expect(statSync(join(out.path, "data")).size).toBe(5 << 20);
    expect(readFileSync(join(out.path, "in"), "utf8")).not.toMatch(/^socket:/);
    expect(fdsInto(dir.path)).toEqual([]);
    [out, dir].forEach((d) => d.cleanup());
  });

  test("a secret on the first tool's stdin (anonymous memory, not a file); its input then comes on /dev/fd/3, opened late without a hang", async () => {
    const out = tempDir("fed-secret");
    const first: ChainLink = {
      // Opens its input only after the daemon has written everything and asked to end it (as
      // age does, the tool itself opens it: `exec` keeps the pid).
      argv: ["sh", "-c", `readlink /proc/self/fd/0 > ${out.path}/stdin; cat > ${out.path}/secret; sleep 0.3; exec cat /dev/fd/3`],
      secretStdin: new TextEncoder().encode("AGE-SECRET-KEY-1XYZ\n"),
      secrets: ["AGE-SECRET-KEY-1XYZ"],
      errorCode: "RESTORE_FAILED",
    };
    const { chain, dir } = await fed([first, sh(`cat > ${out.path}/data`, "RESTORE_FAILED")]);
    await chain.write(new TextEncoder().encode("the backup"));
    await chain.end();
    await chain.finished;
    expect(readFileSync(join(out.path, "data"), "utf8")).toBe("the backup");
    expect(readFileSync(join(out.path, "secret"), "utf8")).toBe("AGE-SECRET-KEY-1XYZ\n");
    expect(readFileSync(join(out.path, "stdin"), "utf8")).toMatch(/^(\/memfd:|pipe:|socket:)/);
    [out, dir].forEach((d) => d.cleanup());
  });

  test("the cause is the upstream-most tool that failed by itself: the ones after it fail on the input it cut short", async () => {
    const { chain, dir } = await fed([
      {
        argv: ["sh", "-c", 'cat >/dev/null; echo "age: error: no identity matched; key AGE-SECRET-KEY-1XYZ" >&2; exit 1'],
        secretStdin: new TextEncoder().encode("AGE-SECRET-KEY-1XYZ\n"),
        secrets: ["AGE-SECRET-KEY-1XYZ"],
        errorCode: "RESTORE_FAILED",
      },
      sh("cat >/dev/null; echo 'zstd: /*stdin*\\: unexpected end of file' >&2; exit 1", "RESTORE_FAILED"),
      sh("cat >/dev/null; echo 'pg_restore: error: input file is too short' >&2; exit 1", "RESTORE_FAILED"),
    ]);
    // The first tool may be gone already (EPIPE): the chain's outcome says why.
    await chain.write(new Uint8Array(100)).catch(() => {});
    await chain.end();
    const err = await chain.finished.catch((e) => e);
    expect(err).toBeInstanceOf(ToolFailedError);
    expect(err.message).toContain("no identity matched");
    expect(err.message).not.toContain("AGE-SECRET-KEY-1XYZ");
    dir.cleanup();
  });

  test("a downstream tool that fails is the cause, not the broken pipes (or kills) it leaves upstream", async () => {
    const { chain, dir } = await fed([
      sh("exec cat", "RESTORE_FAILED"),
      sh("exec cat", "RESTORE_FAILED"),
      sh("head -c 100000 >/dev/null; echo 'pg_restore: error: relation exists' >&2; exit 1", "RESTORE_FAILED"),
    ]);
    const chunk = new Uint8Array(1 << 16);
    let wrote = 0;
    for (; wrote < 1000; wrote++) {
      if (
        !(await chain.write(chunk).then(
          () => true,
          () => false,
        ))
      )
        break;
    }
    expect(wrote).toBeLessThan(1000);
    const err = await chain.finished.catch((e) => e);
    expect(err.message).toContain("relation exists");
    dir.cleanup();
  });

  test("kill(): the tools die before their input ends, so none acts on an end of input", async () => {
    const out = tempDir("fed-kill");
    const { chain, dir } = await fed([sh("exec cat", "RESTORE_FAILED"), sh(`cat >/dev/null; touch ${out.path}/eof`, "RESTORE_FAILED")]);
    await chain.write(new Uint8Array(1000));
    await chain.kill();
    await chain.finished.catch(() => {});
    await Bun.sleep(100);
    expect(existsSync(join(out.path, "eof"))).toBe(false);
    expect(fdsInto(dir.path)).toEqual([]);
    [out, dir].forEach((d) => d.cleanup());
  });

  test("abort kills every tool; writes then fail", async () => {
    const out = tempDir("fed-abort");
    const ac = new AbortController();
    const { chain, dir } = await fed([sh(`echo $$ > ${out.path}/a; exec cat`, "RESTORE_FAILED"), sh(`echo $$ > ${out.path}/b; cat >/dev/null; touch ${out.path}/eof`, "RESTORE_FAILED")], ac.signal);
    await chain.write(new Uint8Array(1000));
    // Both pids written whole (the shell creates the file before it writes to it: an empty
    // read would be pid 0, which "is alive" as this process's group).
    const pidOf = (n: string) => (existsSync(join(out.path, n)) ? Number(readFileSync(join(out.path, n), "utf8").trim()) : 0);
    for (let i = 0; i < 100 && !(pidOf("a") > 0 && pidOf("b") > 0); i++) await Bun.sleep(20);
    const pids = ["a", "b"].map(pidOf);
    expect(pids.every((p) => p > 0)).toBe(true);
    ac.abort();
    expect(
      await chain.finished.then(
        () => "ok",
        () => "failed",
      ),
    ).toBe("failed");
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(join(out.path, "eof"))).toBe(false);
    expect(
      await chain.write(new Uint8Array(10)).then(
        () => "ok",
        () => "failed",
      ),
    ).toBe("failed");
    [out, dir].forEach((d) => d.cleanup());
  });
});
