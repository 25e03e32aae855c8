/**
 * Where the daemon's CPU goes on the fast path (`dump | zstd` joined by an OS pipe): the
 * chain's output read alone, with the count and sha256 taps, and into the local driver,
 * next to `cat FILE | zstd -3 > out; sync`. Prints a table; does not touch RESULTS.md.
 *
 *   node_modules/.bin/bun bench/chain-proto.ts FILE.dump [runs=3]
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toolChain, toolChainInto } from "../src/engines/tool-chain.ts";
import { hashGrowingFile } from "../src/lib/growing-file-hash.ts";
import { countingTap, sha256Tap } from "../src/lib/streams.ts";
import { ZstdReport } from "../src/runner/zstd-report.ts";
import { LocalDriver } from "../src/storage/local.ts";

const [file, runsArg] = process.argv.slice(2);
if (!file) throw new Error("usage: bun bench/chain-proto.ts FILE.dump [runs]");
const runs = Number(runsArg ?? 3);
const dir = mkdtempSync(join(tmpdir(), "chain-proto-"));
const PATH = process.env.PATH!;
const chain = async (zstdFlags: string[] = [], onStderr?: (t: string) => string) =>
  (await toolChain(
    [
      { argv: ["cat", file], errorCode: "DUMP_FAILED" },
      { argv: ["zstd", "-3", "--check", ...zstdFlags, "-c"], errorCode: "COMPRESSION_FAILED", onStderr },
    ],
    { toolPath: PATH, pipeDir: dir },
  ))!;

const variants: Record<string, () => Promise<unknown>> = {
  "shell: cat | zstd -3 > out; sync": async () => {
    const p = Bun.spawn(["sh", "-c", `cat ${file} | zstd -3 -c > ${dir}/shell.zst; sync ${dir}/shell.zst`]);
    await p.exited;
  },
  "chain, read only": async () => {
    for await (const _ of await chain()) void _;
  },
  "chain + count + sha256": async () => {
    const h = sha256Tap();
    for await (const _ of (await chain()).pipeThrough(countingTap(() => {})).pipeThrough(h.stream)) void _;
  },
  "chain (zstd -vv, report read) + local driver": async () => {
    const report = new ZstdReport();
    const h = sha256Tap();
    await new LocalDriver({ root: dir }).put(`k${Math.random()}`, (await chain(["-vv"], (t) => report.feed(t))).pipeThrough(h.stream));
  },
  "chain into a file + growing-file sha256 + fsync": async () => {
    const fd = openSync(`${dir}/direct.${Math.random()}`, "w+", 0o600);
    const into = (await toolChainInto(
      [
        { argv: ["cat", file], errorCode: "DUMP_FAILED" },
        { argv: ["zstd", "-3", "--check", "-c"], errorCode: "COMPRESSION_FAILED" },
      ],
      { toolPath: PATH, pipeDir: dir },
      fd,
    ))!;
    await hashGrowingFile(fd, into.finished);
    fsyncSync(fd);
    closeSync(fd);
  },
  "chain + count + sha256 + local driver": async () => {
    const h = sha256Tap();
    await new LocalDriver({ root: dir }).put(`k${Math.random()}`, (await chain()).pipeThrough(countingTap(() => {})).pipeThrough(h.stream));
  },
};

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
for (const [name, fn] of Object.entries(variants)) {
  const wall: number[] = [];
  const own: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = cpu();
    const t0 = performance.now();
    await fn();
    wall.push((performance.now() - t0) / 1000);
    own.push(cpu() - c0);
  }
  const med = (a: number[]) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]!.toFixed(2);
  console.log(`${name.padEnd(44)} wall ${med(wall)} s   this process's CPU ${med(own)} s`);
}
rmSync(dir, { recursive: true, force: true });
