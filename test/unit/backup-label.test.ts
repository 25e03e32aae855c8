import { expect, test } from "bun:test";
import { parseBackupLabel } from "../../src/runner/backup-label.ts";

const LABEL = `START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
CHECKPOINT LOCATION: 0/2000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-30 01:00:00 UTC
LABEL: snapdb job_x
START TIMELINE: 1
`;

test("a backup_label as PostgreSQL 15 writes it", () => {
  expect(parseBackupLabel(LABEL)).toEqual({
    startLsn: "0/2000028",
    startWalFile: "000000010000000000000002",
    checkpointLsn: "0/2000060",
    startTime: "2026-11-30 01:00:00 UTC",
    label: "snapdb job_x",
    timeline: 1,
    text: LABEL,
  });
});

test("without START TIMELINE the timeline comes from the WAL file's name", () => {
  const text = LABEL.replace("START TIMELINE: 1\n", "").replace("file 000000010000000000000002", "file 0000000A0000000000000002");
  expect(parseBackupLabel(text)?.timeline).toBe(10);
});

test("a label the job cannot use is none at all: no start location, or a timeline that is not a positive integer (it would fail the job's integer schema)", () => {
  expect(parseBackupLabel("LABEL: x\n")).toBeNull();
  for (const bad of ["x", "0", "-1", "1.5", "99999999999999999999"]) expect(parseBackupLabel(LABEL.replace("START TIMELINE: 1", `START TIMELINE: ${bad}`))).toBeNull();
});
