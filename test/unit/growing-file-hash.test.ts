import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { hashGrowingFile } from "../../src/lib/growing-file-hash.ts";
import { tempDir } from "../helpers/tmp.ts";

describe("hashing a file while another process writes it", () => {
  test("follows a slow writer and hashes every byte it wrote, ready as soon as it ends", async () => {
    const dir = tempDir("growing");
    const path = join(dir.path, "out");
    const fd = openSync(path, "w+", 0o600);
    // 30 random chunks with pauses: the reader catches up with the writer many times.
    const writer = Bun.spawn(["sh", "-c", "for i in $(seq 30); do head -c 70001 /dev/urandom; sleep 0.01; done"], { stdout: fd });
    const seenWhileWriting: number[] = [];
    let counted = 0;
    const hashed = await hashGrowingFile(
      fd,
      writer.exited.then((code) => expect(code).toBe(0)),
      (n) => {
        counted += n;
        if (writer.exitCode === null) seenWhileWriting.push(n);
      },
    );
    closeSync(fd);
    const bytes = readFileSync(path);
    expect(bytes.length).toBe(30 * 70001);
    expect(hashed).toEqual({ size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") });
    expect(counted).toBe(bytes.length);
    expect(seenWhileWriting.length).toBeGreaterThan(1);
    dir.cleanup();
  });

  test("a writer that fails fails the hash with its own error", async () => {
    const dir = tempDir("growing-fail");
    const fd = openSync(join(dir.path, "out"), "w+", 0o600);
    const writer = Bun.spawn(["sh", "-c", "head -c 1000 /dev/zero; sleep 0.2; exit 3"], { stdout: fd });
    const done = writer.exited.then((code) => {
      if (code !== 0) throw new Error(`writer exited ${code}`);
    });
    expect(await hashGrowingFile(fd, done).catch((e) => e.message)).toBe("writer exited 3");
    closeSync(fd);
    dir.cleanup();
  });
});
