import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { chmodSync, closeSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { decryptStream, newAgeIdentity } from "../../src/crypto/age.ts";
import { ToolFailedError } from "../../src/engines/tool-stream.ts";
import { readAll } from "../../src/lib/streams.ts";
import { chainIntoFile, chainStream, planBackupChain } from "../../src/runner/backup-chain.ts";
import type { Compression } from "../../src/runner/compression.ts";
import { StorageError } from "../../src/storage/errors.ts";
import { LocalDriver } from "../../src/storage/local.ts";
import { tempDir } from "../helpers/tmp.ts";

// The chain with real tools, and with fakes put first on the tools' PATH: a zstd that
// passes the probe (-1) but hides or misstates its totals at the policy's level, an age
// that exits 0 without encrypting.
const scratch = tempDir("backup-chain");
const bins: { cleanup(): void }[] = [];
afterAll(() => [scratch, ...bins].forEach((d) => d.cleanup()));
const REAL_ZSTD = Bun.which("zstd")!;
const DUMP = { argv: ["sh", "-c", "seq 1 60000"], secretEnv: {} };
const DUMP_BYTES = Buffer.from(Bun.spawnSync(["seq", "1", "60000"]).stdout);

function binWith(fakes: Record<string, string>): string {
  const dir = tempDir("fake-bin");
  bins.push(dir);
  for (const [name, script] of Object.entries(fakes)) {
    writeFileSync(join(dir.path, name), `#!/bin/sh\n${script}\n`);
    chmodSync(join(dir.path, name), 0o755);
  }
  return `${dir.path}:${process.env.PATH}`;
}

const storage = new LocalDriver({ root: join(scratch.path, "storage") });

/**
 * The chain run the way the runner runs it: its output read by the daemon ("stream"), or
 * written by its last tool into a local driver's file that the daemon hashes as it grows
 * ("file"). `stored()` gives the stored bytes, or rejects as the backup would.
 */
async function backup(toolPath: string, recipients: string[], mode: "stream" | "file", compression: Compression = { algorithm: "zstd", level: 3 }) {
  const progress = { bytesIn: 0, bytesStored: 0 };
  const env = { toolPath, scratchDir: scratch.path };
  const chain = await planBackupChain(DUMP, compression, recipients, env, progress);
  const signal = new AbortController().signal;
  const stored = async (): Promise<Buffer> => {
    if (mode === "stream") return readAll((await chainStream(chain!, env, signal))!);
    const name = crypto.randomUUID();
    const key = `k/${name}`;
    const file = await storage.openDirectWrite(key);
    // Whatever happens, the temp file goes: a failed backup leaves no file at all.
    const leftovers = () => readdirSync(join(storage.root, "k")).filter((n) => n.includes(name) && n !== name);
    try {
      const written = (await chainIntoFile(chain!, env, signal, file, (n) => (progress.bytesStored += n)))!;
      const put = await file.commit();
      const bytes = await readFile(join(storage.root, key));
      expect(put.size).toBe(bytes.length);
      expect(written).toEqual({ size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });
      expect(progress.bytesStored).toBe(bytes.length);
      return bytes;
    } finally {
      await file.discard();
      expect(leftovers()).toEqual([]);
    }
  };
  return { chain, progress, stored };
}

describe.each(["stream", "file"] as const)("the backup chain into %s", (mode) => {
  test("real tools: pg_dump-like | zstd | age; the output decrypts and decompresses to the dump, whose size is exact", async () => {
    const { identity, recipient } = await newAgeIdentity();
    const { chain, progress, stored: run } = await backup(process.env.PATH!, [recipient], mode);
    expect(chain?.encrypted).toBe(true);
    const stored = await run();
    const compressed = await readAll(await decryptStream(new Blob([stored]).stream(), [identity]));
    const dump = Bun.spawnSync([REAL_ZSTD, "-d", "-c"], { stdin: compressed }).stdout;
    expect(Buffer.from(dump).equals(DUMP_BYTES)).toBe(true);
    expect(progress.bytesIn).toBe(DUMP_BYTES.length);
  });

  test("no compression, no encryption: the dump tool alone, its output stored as is and counted as the dump", async () => {
    const { chain, progress, stored } = await backup(process.env.PATH!, [], mode, { algorithm: "none", level: 0 });
    expect(chain?.links.length).toBe(1);
    expect((await stored()).equals(DUMP_BYTES)).toBe(true);
    expect(progress.bytesIn).toBe(DUMP_BYTES.length);
  });

  test("no compression but encryption: no chain (the dump's exact size would be unknown under age)", async () => {
    const { recipient } = await newAgeIdentity();
    const { chain } = await backup(process.env.PATH!, [recipient], mode, { algorithm: "none", level: 0 });
    expect(chain).toBeNull();
  });

  test("a zstd that hides its totals fails the backup (COMPRESSION_FAILED), never a guessed size", async () => {
    const path = binWith({ zstd: `case " $* " in *" -1 "*) exec ${REAL_ZSTD} "$@";; esac\nexec ${REAL_ZSTD} -q -c -3` });
    const { stored } = await backup(path, [], mode);
    const err = await stored().catch((e) => e);
    expect(err).toBeInstanceOf(ToolFailedError);
    expect(err.code).toBe("COMPRESSION_FAILED");
    expect(err.message).toContain("did not report how many bytes it read");
  });

  test("a zstd whose totals disagree with what arrived fails the backup", async () => {
    const path = binWith({
      zstd: `case " $* " in *" -1 "*) exec ${REAL_ZSTD} "$@";; esac\n${REAL_ZSTD} -q -c -3\necho '/*stdin*\\ : 1.00%   (500 B => 7 B, /*stdout*\\)' >&2`,
    });
    const { stored } = await backup(path, [], mode);
    const err = await stored().catch((e) => e);
    expect(err).toBeInstanceOf(ToolFailedError);
    expect(err.message).toMatch(/zstd reported 7 bytes written, \d+ were stored/);
  });

  test("a zstd that never reports totals is not used: no chain, the daemon relays", async () => {
    const { chain } = await backup(binWith({ zstd: "exec cat" }), [], mode);
    expect(chain).toBeNull();
  });

  test("an age that exits 0 without encrypting is not used: encryption stays in-process", async () => {
    const { recipient } = await newAgeIdentity();
    const { chain } = await backup(binWith({ age: "exec cat" }), [recipient], mode);
    expect(chain?.encrypted).toBe(false);
  });
});

describe("the backup chain into a file the daemon cannot read back", () => {
  test("an I/O error while hashing stops the tools before it returns, as STORAGE_ERROR", async () => {
    const pidFile = join(scratch.path, "dump.pid");
    const dump = { argv: ["sh", "-c", `echo $$ > ${pidFile}; exec cat /dev/zero`], secretEnv: {} };
    const env = { toolPath: process.env.PATH!, scratchDir: scratch.path };
    const chain = (await planBackupChain(dump, { algorithm: "zstd", level: 1 }, [], env, { bytesIn: 0, bytesStored: 0 }))!;
    // A write-only fd: the tools write it, every read of the daemon's fails (EBADF).
    const path = join(scratch.path, "write-only");
    const fd = openSync(path, "w", 0o600);
    const target = { fd, commit: async () => ({ size: 0 }), discard: async () => {} };
    const err = await chainIntoFile(chain, env, new AbortController().signal, target, () => {}).catch((e) => e);
    closeSync(fd);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.code).toBe("STORAGE_ERROR");
    expect(err.message).toContain("local storage read");
    // Already dead (or a zombie awaiting its reaper) when the call returned: no tool writes on.
    const dumpPid = readFileSync(pidFile, "utf8").trim();
    const state = (() => {
      try {
        return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${dumpPid}/stat`, "utf8"))![1]!;
      } catch {
        return "gone";
      }
    })();
    expect(["gone", "Z", "X"]).toContain(state);
  });
});
