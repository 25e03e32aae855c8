/**
 * The `--wait` progress line with a clock the test moves: on a terminal it is redrawn only
 * when its text changes and never wider than the terminal (a wrapped line cannot be redrawn
 * with \r), keeping the bar, percentage and ETA longest; elsewhere it prints a plain line on
 * each status change and every 5 s, nothing in between.
 */
import { expect, test } from "bun:test";
import { ProgressView } from "../../src/cli/client/progress.ts";

const MiB = 1024 * 1024;

function setup(isTTY: boolean, columns = 120, total: number | null = 100 * MiB) {
  let now = 0;
  const writes: string[] = [];
  const view = new ProgressView({ isTTY, columns, write: (s: string) => writes.push(s) }, { id: "job_01TEST", total, exact: false, now: () => now });
  return { view, writes, tick: (ms: number) => (now += ms) };
}

test("a terminal gets one line redrawn in place, only when its text changes", () => {
  const { view, writes, tick } = setup(true);
  view.update("running", 0, 0);
  view.render();
  view.render();
  expect(writes).toHaveLength(1);
  tick(1000);
  view.update("running", 25 * MiB);
  view.render();
  expect(writes).toHaveLength(2);
  expect(writes[1]).toBe("\rrunning  [====>               ]  25%  25.0 MiB / ~100.0 MiB  25.0 MiB/s  elapsed 0:01  ETA 0:03\x1b[K");
  view.clear();
  expect(writes.at(-1)).toBe("\r\x1b[K");
});

test("a narrow terminal drops the status, the rate, then the elapsed time; the bar, % and ETA stay", () => {
  for (const columns of [120, 90, 80, 70]) {
    const { view, writes, tick } = setup(true, columns);
    view.update("running", 0, 0);
    tick(2000);
    view.update("running", 50 * MiB);
    view.render();
    const line = writes.at(-1)!.replace(/^\r|\x1b\[K$/g, "");
    expect(line.length).toBeLessThan(columns);
    expect(line).toMatch(/\[=+> *\] {2}50% {2}50\.0 MiB \/ ~100\.0 MiB .*ETA 0:02$/);
  }
});

test("the estimate caps at 99%; without one there is no percentage or ETA", () => {
  const over = setup(false);
  over.view.update("running", 0, 0);
  over.tick(1000);
  over.view.update("running", 150 * MiB);
  expect(over.view.line(false)).toContain("99%");
  expect(over.view.line(false)).toContain("ETA soon");
  const none = setup(false, 120, null);
  none.view.update("running", 0, 0);
  none.tick(1000);
  none.view.update("running", 5 * MiB);
  expect(none.view.line(false)).toBe("job_01TEST  running  5.00 MiB  5.00 MiB/s  elapsed 0:01  (no earlier backup to estimate an ETA from)");
});

test("without a terminal: a line on each status change and every 5 s, never a \\r", () => {
  const { view, writes, tick } = setup(false);
  view.update("queued", 0);
  tick(1000);
  view.update("queued", 0);
  tick(1000);
  view.update("running", 0, 2000);
  for (let i = 0; i < 12; i++) {
    tick(1000);
    view.update("running", (i + 1) * MiB);
    view.render();
  }
  expect(writes.map((w) => w.split("  ")[1])).toEqual(["queued", "running", "running", "running"]);
  expect(writes.every((w) => w.endsWith("\n") && !w.includes("\r"))).toBe(true);
  expect(writes[2]).toContain("elapsed 0:05");
});
