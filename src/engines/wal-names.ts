/**
 * PostgreSQL's WAL file names and positions. A segment is named TTTTTTTTXXXXXXXXYYYYYYYY
 * (timeline, then the segment number split in "log" and "seg" parts, hex); a timeline's
 * history file is TTTTTTTT.history. An LSN is printed `X/Y` (high/low 32 bits, hex).
 */

export const SEGMENT_NAME = /^[0-9A-F]{24}$/;
export const HISTORY_NAME = /^[0-9A-F]{8}\.history$/;

/** Segments per 4 GiB "log" unit: how PostgreSQL splits the segment number in the name. */
const segmentsPerLog = (segmentSize: number) => 0x1_0000_0000 / segmentSize;

export interface SegmentName {
  timeline: number;
  segno: number;
}

export function parseSegmentName(name: string, segmentSize: number): SegmentName | null {
  if (!SEGMENT_NAME.test(name)) return null;
  const timeline = Number.parseInt(name.slice(0, 8), 16);
  const log = Number.parseInt(name.slice(8, 16), 16);
  const seg = Number.parseInt(name.slice(16, 24), 16);
  return { timeline, segno: log * segmentsPerLog(segmentSize) + seg };
}

export function historyTimeline(name: string): number | null {
  return HISTORY_NAME.test(name) ? Number.parseInt(name.slice(0, 8), 16) : null;
}

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");

export function segmentName(timeline: number, segno: number, segmentSize: number): string {
  const perLog = segmentsPerLog(segmentSize);
  return `${hex8(timeline)}${hex8(Math.floor(segno / perLog))}${hex8(segno % perLog)}`;
}

/** `0/3000060` → 50331744 (exact below 2^53: 8 PiB of WAL). */
export function parseLsn(lsn: string): number | null {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) return null;
  return Number.parseInt(m[1]!, 16) * 0x1_0000_0000 + Number.parseInt(m[2]!, 16);
}

export function formatLsn(position: number): string {
  const high = Math.floor(position / 0x1_0000_0000);
  const low = position % 0x1_0000_0000;
  return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
}

/** The segment holding the byte at `position`. */
export const segnoOf = (position: number, segmentSize: number) => Math.floor(position / segmentSize);
