import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decryptStream, newAgeIdentity } from "../../src/crypto/age.ts";
import { ToolFailedError } from "../../src/engines/tool-stream.ts";
import { readAll } from "../../src/lib/streams.ts";
import { startBackupChain } from "../../src/runner/backup-chain.ts";
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

async function backup(toolPath: string, recipients: string[] = []) {
  const progress = { bytesIn: 0, bytesStored: 0 };
  const chain = await startBackupChain(DUMP, { algorithm: "zstd", level: 3 }, recipients, { toolPath, scratchDir: scratch.path }, new AbortController().signal, progress);
  return { chain, progress };
}

describe("the backup chain", () => {
  test("real tools: pg_dump-like | zstd | age; the output decrypts and decompresses to the dump, whose size is exact", async () => {
    const { identity, recipient } = await newAgeIdentity();
    const { chain, progress } = await backup(process.env.PATH!, [recipient]);
    expect(chain?.encrypted).toBe(true);
    const stored = await readAll(chain!.stream);
    const compressed = await readAll(await decryptStream(new Blob([stored]).stream(), [identity]));
    const dump = Bun.spawnSync([REAL_ZSTD, "-d", "-c"], { stdin: compressed }).stdout;
    expect(Buffer.from(dump).equals(DUMP_BYTES)).toBe(true);
    expect(progress.bytesIn).toBe(DUMP_BYTES.length);
  });

  test("a zstd that hides its totals fails the backup (COMPRESSION_FAILED), never a guessed size", async () => {
    const path = binWith({ zstd: `case " $* " in *" -1 "*) exec ${REAL_ZSTD} "$@";; esac\nexec ${REAL_ZSTD} -q -c -3` });
    const { chain } = await backup(path);
    const err = await readAll(chain!.stream).catch((e) => e);
    expect(err).toBeInstanceOf(ToolFailedError);
    expect(err.code).toBe("COMPRESSION_FAILED");
    expect(err.message).toContain("did not report how many bytes it read");
  });

  test("a zstd whose totals disagree with what arrived fails the backup", async () => {
    const path = binWith({
      zstd: `case " $* " in *" -1 "*) exec ${REAL_ZSTD} "$@";; esac\n${REAL_ZSTD} -q -c -3\necho '/*stdin*\\ : 1.00%   (500 B => 7 B, /*stdout*\\)' >&2`,
    });
    const { chain } = await backup(path);
    const err = await readAll(chain!.stream).catch((e) => e);
    expect(err).toBeInstanceOf(ToolFailedError);
    expect(err.message).toMatch(/zstd reported 7 bytes written, \d+ arrived/);
  });

  test("a zstd that never reports totals is not used: no chain, the daemon relays", async () => {
    const { chain } = await backup(binWith({ zstd: "exec cat" }));
    expect(chain).toBeNull();
  });

  test("an age that exits 0 without encrypting is not used: encryption stays in-process", async () => {
    const { recipient } = await newAgeIdentity();
    const { chain } = await backup(binWith({ age: "exec cat" }), [recipient]);
    expect(chain?.encrypted).toBe(false);
    await chain!.stream.cancel();
  });
});
