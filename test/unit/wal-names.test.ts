import { describe, expect, test } from "bun:test";
import { slotNameOf } from "../../src/engines/physical.ts";
import { formatLsn, historyTimeline, parseLsn, parseSegmentName, segmentName, segnoOf } from "../../src/engines/wal-names.ts";

const MB16 = 16 * 1024 * 1024;

describe("WAL names and positions", () => {
  test("segment names split the number as PostgreSQL does, for any segment size", () => {
    expect(segmentName(1, 3, MB16)).toBe("000000010000000000000003");
    // 256 segments of 16 MB per 4 GiB "log": segment 257 is log 1, seg 1.
    expect(segmentName(2, 257, MB16)).toBe("000000020000000100000001");
    expect(parseSegmentName("000000020000000100000001", MB16)).toEqual({ timeline: 2, segno: 257 });
    expect(parseSegmentName("0000000100000001000000FF", MB16)).toEqual({ timeline: 1, segno: 511 });
    // 1 GB segments: 4 per log.
    expect(segmentName(1, 5, 1 << 30)).toBe("000000010000000100000001");
    for (const name of ["000000010000000000000003.partial", "00000001000000000000003", "00000002.history", "zz0000010000000000000003"]) {
      expect(parseSegmentName(name, MB16)).toBeNull();
    }
    expect(historyTimeline("00000002.history")).toBe(2);
    expect(historyTimeline("00000002.history.partial")).toBeNull();
  });

  test("LSNs round-trip and map to their segment", () => {
    expect(parseLsn("0/3000060")).toBe(0x3000060);
    expect(parseLsn("1A/0")).toBe(0x1a * 2 ** 32);
    expect(formatLsn(parseLsn("2B/FF000028")!)).toBe("2B/FF000028");
    expect(parseLsn("0/3000060; DROP")).toBeNull();
    expect(segnoOf(0x3000000, MB16)).toBe(3);
    expect(segnoOf(0x2ffffff, MB16)).toBe(2);
  });

  test("slot names: snapdb_ and the data source id, lowercased, anything else as _", () => {
    expect(slotNameOf("ds_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q")).toBe("snapdb_ds_01jd8z3k6y6q2w9v7t5r4e3w2q");
    expect(slotNameOf("ds-Ä'x")).toBe("snapdb_ds___x");
    expect(slotNameOf("x".repeat(100)).length).toBe(63);
  });
});
