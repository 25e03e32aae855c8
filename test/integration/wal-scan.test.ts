import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseLsn, parseSegmentName, segmentName } from "../../src/engines/wal-names.ts";
import { scanSegment, type WalCarry } from "../../src/engines/wal-scan.ts";
import { startPostgres, type PgServer } from "../helpers/postgres.ts";

/**
 * The WAL scanner (transaction end times per segment, what the recovery window is made of)
 * against PostgreSQL's own pg_waldump, on segments a real server wrote: many small commits,
 * aborts, commit records longer than a page (2,000 subtransactions each), and one such record
 * placed across a segment boundary.
 */
let pg: PgServer;
const SEG = 16 * 1024 * 1024;
beforeAll(async () => {
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
});

/** One transaction with 2,000 subtransactions that each wrote: its commit record lists their 2,000 xids (8 KB). */
const BIG_COMMIT = "DO $$ BEGIN FOR i IN 1..2000 LOOP BEGIN INSERT INTO t (pad) VALUES ('s'); EXCEPTION WHEN others THEN NULL; END; END LOOP; END $$;";
const insertLsn = () => parseLsn(pg.psql("SELECT pg_current_wal_insert_lsn();").trim())!;

/** pg_waldump's transaction end times (µs since the epoch) for segments first..last, in WAL order. */
function waldumpTimes(walDir: string, first: string, last: string): number[] {
  const run = Bun.spawnSync([join(pg.binDir, "pg_waldump"), "--rmgr=Transaction", "--path", walDir, first, last], { stdout: "pipe", stderr: "pipe" });
  const times: number[] = [];
  for (const m of run.stdout.toString().matchAll(/rmgr: Transaction .*desc: (?:COMMIT|ABORT) (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:\.(\d{1,6}))? UTC/g)) {
    const whole = Date.parse(`${m[1]!.replace(" ", "T")}Z`);
    times.push(whole * 1000 + Number((m[2] ?? "0").padEnd(6, "0")));
  }
  return times;
}

test("every transaction end time pg_waldump sees, in order, across pages and segment boundaries", async () => {
  // A slot keeps every segment from here on: checkpoints would recycle them otherwise.
  pg.psql("SELECT pg_create_physical_replication_slot('keep_wal', true);");
  pg.psql("CREATE TABLE t (id serial PRIMARY KEY, pad text);", "appdb");
  const start = insertLsn();
  for (let round = 0; round < 3; round++) {
    // Small commits and aborts, then a page-spanning commit record.
    pg.psql(
      `${Array.from({ length: 200 }, (_, i) => `INSERT INTO t (pad) VALUES (repeat('x', ${i * 7}));`).join("\n")}
       BEGIN; INSERT INTO t (pad) VALUES ('gone'); ROLLBACK;
       ${BIG_COMMIT}`,
      "appdb",
    );
  }
  // Measure how far a big commit's own record reaches, then bring the WAL just short of a
  // segment boundary so that the next one's commit record straddles it.
  const before = insertLsn();
  pg.psql(BIG_COMMIT, "appdb");
  const cost = insertLsn() - before;
  const commitRecord = 2000 * 4 + 100;
  // WAL per filler row, measured.
  const rowStart = insertLsn();
  pg.psql("INSERT INTO t (pad) SELECT repeat('y', 100) FROM generate_series(1, 1000);", "appdb");
  const perRow = (insertLsn() - rowStart) / 1000;
  let crossed = false;
  for (let attempt = 0; attempt < 4 && !crossed; attempt++) {
    // Aim the commit record's middle at the boundary: `left` should be about `aim`.
    const aim = cost - commitRecord / 2;
    for (let i = 0; i < 200; i++) {
      const left = SEG - (insertLsn() % SEG);
      if (left < aim - commitRecord / 4) {
        pg.psql("SELECT pg_switch_wal();");
        pg.psql("INSERT INTO t (pad) VALUES ('after switch');", "appdb");
        continue;
      }
      const rows = Math.floor(((left - aim) * 0.7) / perRow);
      if (rows < 1) break;
      pg.psql(`INSERT INTO t (pad) SELECT repeat('y', 100) FROM generate_series(1, ${Math.min(rows, 50_000)});`, "appdb");
    }
    const segBefore = Math.floor(insertLsn() / SEG);
    pg.psql(BIG_COMMIT, "appdb");
    const after = insertLsn();
    crossed = Math.floor(after / SEG) === segBefore + 1 && after % SEG < commitRecord;
  }
  pg.psql("INSERT INTO t (pad) VALUES ('last');", "appdb");
  const end = insertLsn();
  pg.psql("SELECT pg_switch_wal();");

  const walDir = join(pg.socketDir, "data", "pg_wal");
  const firstSeg = Math.floor(start / SEG);
  const lastSeg = Math.floor(end / SEG);
  const names = Array.from({ length: lastSeg - firstSeg + 1 }, (_, i) => segmentName(1, firstSeg + i, SEG));
  const expected = waldumpTimes(walDir, names[0]!, names.at(-1)!);
  const seen: number[] = [];
  let carry: WalCarry | null = null;
  let carried = 0;
  let lastOfAll: number | null = null;
  for (const name of names) {
    const bytes = new Uint8Array(readFileSync(join(walDir, name)));
    const scan = scanSegment(bytes, parseSegmentName(name, SEG)!.segno, carry, (at) => seen.push(at));
    if (carry) carried++;
    carry = scan.carry;
    if (scan.lastXactAtUs !== null) lastOfAll = Math.max(lastOfAll ?? 0, scan.lastXactAtUs);
  }
  expect(expected.length).toBeGreaterThan(600);
  expect(seen).toEqual(expected);
  expect(lastOfAll).toBe(Math.max(...expected));
  expect(crossed).toBe(true);
  expect(carried).toBeGreaterThan(0);
}, 120_000);
