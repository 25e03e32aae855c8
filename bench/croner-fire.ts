/**
 * Profile for scheduler-scale.ts: croner alone (no database, no snapdb code). Builds N timers
 * like the scheduler does (one Cron per attachment), F of them every minute, and records how
 * late each callback runs after the minute, and what croner reports as currentRun().
 *
 *   node_modules/.bin/bun bench/croner-fire.ts [N=5000] [F=1000]
 */
import { Cron } from "croner";
import { percentile } from "./lib.ts";

const N = Math.min(50_000, Number(process.argv[2] ?? 5000));
const F = Math.min(N, Number(process.argv[3] ?? 1000));
const t0 = performance.now();
const late: number[] = [];
const recorded: number[] = [];
let minute = 0;
const crons: Cron[] = [];
for (let i = 0; i < N; i++) {
  const every = i < F;
  crons.push(
    new Cron(every ? "* * * * *" : i % 2 ? "17 3 * * *" : "41 * * * *", { mode: "5-part", timezone: "UTC", unref: true }, (self) => {
      if (!every) return;
      late.push(Date.now() - minute);
      recorded.push((self.currentRun()?.getTime() ?? 0) - minute);
    }),
  );
}
const built = performance.now() - t0;
minute = Math.ceil(Date.now() / 60_000) * 60_000;
console.log(`built ${N} Cron objects in ${built.toFixed(0)} ms; RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB; waiting ${((minute - Date.now()) / 1000).toFixed(0)} s for the minute`);
const deadline = minute + 60_000;
while (late.length < F && Date.now() < deadline) await Bun.sleep(200);
for (const c of crons) c.stop();
console.log(
  `${late.length} of ${F} fired; callback delay after the minute p50 ${percentile(late, 50)} ms, p99 ${percentile(late, 99)} ms, max ${Math.max(...late)} ms; currentRun() − minute p50 ${percentile(recorded, 50)} ms, max ${Math.max(...recorded)} ms`,
);
process.exit(0);
