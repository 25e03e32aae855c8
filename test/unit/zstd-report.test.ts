import { describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ZstdReport, zstdReportsTotals } from "../../src/runner/zstd-report.ts";
import { tempDir } from "../helpers/tmp.ts";

const PATH = process.env.PATH!;

describe("zstd's report", () => {
  test("reads the exact totals of the real zstd, and keeps none of its chatter", async () => {
    const input = new Uint8Array(3_000_000).map((_, i) => (i * 31) % 251);
    const proc = Bun.spawn(["zstd", "-3", "--check", "-vv", "-c"], { stdin: new Blob([input]), stdout: "pipe", stderr: "pipe" });
    const [out, err] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).text()]);
    expect(await proc.exited).toBe(0);
    const report = new ZstdReport();
    // Fed in small pieces, as a pipe delivers it: lines cut anywhere.
    let kept = "";
    for (let i = 0; i < err.length; i += 7) kept += report.feed(err.slice(i, i + 7));
    expect(report.totals).toEqual({ read: input.length, written: out.byteLength });
    expect(kept).toBe("");
  });

  test("the formats of zstd 1.4 and 1.5, progress lines, and an error worth keeping", () => {
    const r14 = new ZstdReport();
    expect(r14.feed("Read :   12 MB ==> 21.05%\r/*stdin*\\            : 21.05%   (418123456 => 88012345 bytes, /*stdout*\\) \n")).toBe("");
    expect(r14.totals).toEqual({ read: 418123456, written: 88012345 });

    const r15 = new ZstdReport();
    expect(r15.feed("\r(L3) Buffered:    0 B - Consumed:4096 B - Compressed:100 B => 2.44% \r")).toBe("");
    expect(r15.totals).toBeNull();
    // Human-readable sizes (zstd -v) are not exact and must not be taken for totals.
    r15.feed("/*stdin*\\            : 21.05%   (   418 MiB =>   88.0 MiB, /*stdout*\\) \n");
    expect(r15.totals).toBeNull();
    expect(r15.feed("zstd: error 70 : Write error : cannot write block : Broken pipe \n")).toBe("zstd: error 70 : Write error : cannot write block : Broken pipe\n");
  });

  test("a zstd that does not report exact totals is not trusted with the dump's size", async () => {
    expect(await zstdReportsTotals(Bun.which("zstd")!, PATH)).toBe(true);
    const dir = tempDir("fake-zstd");
    try {
      const fake = join(dir.path, "zstd");
      writeFileSync(fake, "#!/bin/sh\ncat\n");
      chmodSync(fake, 0o755);
      expect(await zstdReportsTotals(fake, PATH)).toBe(false);
      const liar = join(dir.path, "zstd-liar");
      writeFileSync(liar, "#!/bin/sh\ncat >/dev/null; echo '(5 B => 5 B, x)' >&2\n");
      chmodSync(liar, 0o755);
      expect(await zstdReportsTotals(liar, PATH)).toBe(false);
    } finally {
      dir.cleanup();
    }
  });
});
