/**
 * Reads the commit and abort times out of one WAL segment. A restore to a point in time
 * stops before the first transaction that ended after the target, so the latest reachable
 * instant is the end time of the last transaction the archive holds: the recovery window
 * needs it per segment. Only what that takes is parsed (the layout of
 * src/include/access/xlogrecord.h and xlog_internal.h, stable since PostgreSQL 9.5):
 *
 * - every page starts with a header (24 bytes, 40 on a segment's first page) whose
 *   `xlp_rem_len` says how many bytes of a record begun on an earlier page come first;
 * - a record is `xl_tot_len` bytes, 8-aligned, may continue over pages (and segments):
 *   a 24-byte header (xl_info at 16, xl_rmid at 17), block headers, then data, the record's
 *   "main data" last;
 * - transaction records (rmgr 1) COMMIT, ABORT, COMMIT PREPARED, ABORT PREPARED carry
 *   their time (µs since 2000-01-01, int64) as the first 8 bytes of their main data.
 *
 * Little-endian hosts only (the WAL is in the server's byte order; every platform
 * snapdb runs on is little-endian). A page that does not belong where it lies (a stale or
 * zeroed page) ends the scan: what was read until then stands.
 */

const RM_XACT_ID = 1;
const XACT_OPMASK = 0x70;
/** COMMIT, COMMIT_PREPARED, ABORT, ABORT_PREPARED (not PREPARE 0x10 or ASSIGNMENT 0x50). */
const XACT_ENDS = new Set([0x00, 0x30, 0x20, 0x40]);
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
const SHORT_HEADER = 24;
const LONG_HEADER = 40;
const RECORD_HEADER = 24;
/** PostgreSQL's epoch (2000-01-01) in µs since the Unix epoch. */
const PG_EPOCH_US = 946_684_800_000_000n;

const maxAlign = (n: number) => (n + 7) & ~7;

/** A record that runs past a segment's end: the next segment's scan completes it. */
export interface WalCarry {
  /** The segment it continues into. */
  segno: number;
  bytes: Uint8Array;
  filled: number;
}

export interface SegmentScan {
  /** The end time of the segment's last transaction (µs since the Unix epoch), or null. */
  lastXactAtUs: number | null;
  transactions: number;
  carry: WalCarry | null;
}

/** The end time of a transaction record, in µs since the Unix epoch; null for any other record. */
function xactTimeOf(rec: Uint8Array): number | null {
  const view = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
  if (rec[17] !== RM_XACT_ID || !XACT_ENDS.has(rec[16]! & XACT_OPMASK)) return null;
  // Block headers up to the main data's: a transaction end registers no blocks, only an
  // origin (253) or a top-level xid (252) may come before it.
  let pos = RECORD_HEADER;
  let mainLen = -1;
  while (pos < rec.length && mainLen < 0) {
    const id = rec[pos++]!;
    if (id === 255) mainLen = rec[pos]!;
    else if (id === 254) mainLen = view.getUint32(pos, true);
    else if (id === 253) pos += 2;
    else if (id === 252) pos += 4;
    else return null;
  }
  if (mainLen < 8 || mainLen > rec.length) return null;
  const us = view.getBigInt64(rec.length - mainLen, true) + PG_EPOCH_US;
  return Number(us);
}

/**
 * Scans a whole segment (`segment`, its number `segno`). `carry` is the previous segment's
 * unfinished record, if that segment was scanned just before; anything else is ignored.
 * `onXact` sees every transaction end time found, in WAL order.
 */
export function scanSegment(segment: Uint8Array, segno: number, carry: WalCarry | null = null, onXact?: (atUs: number) => void): SegmentScan {
  const view = new DataView(segment.buffer, segment.byteOffset, segment.byteLength);
  const out: SegmentScan = { lastXactAtUs: null, transactions: 0, carry: null };
  if (segment.length < LONG_HEADER) return out;
  const blockSize = view.getUint32(36, true);
  if (blockSize < 1024 || blockSize > 65536 || segment.length % blockSize !== 0) return out;
  const segmentStart = segno * segment.length;
  let pending = carry && carry.segno === segno ? { bytes: carry.bytes, filled: carry.filled } : null;

  const finish = (rec: Uint8Array) => {
    const at = xactTimeOf(rec);
    if (at === null) return;
    onXact?.(at);
    out.transactions++;
    if (out.lastXactAtUs === null || at > out.lastXactAtUs) out.lastXactAtUs = at;
  };

  for (let page = 0; page < segment.length; page += blockSize) {
    const info = view.getUint16(page + 2, true);
    const pageAddr = Number(view.getBigUint64(page + 8, true));
    if (pageAddr !== segmentStart + page) return out; // not a page of this segment (zeroes, stale)
    const remLen = view.getUint32(page + 16, true);
    let off = page + (info & XLP_LONG_HEADER ? LONG_HEADER : SHORT_HEADER);
    const pageEnd = page + blockSize;
    if (info & XLP_FIRST_IS_CONTRECORD) {
      const here = Math.min(remLen, pageEnd - off);
      if (pending && pending.bytes.length - pending.filled === remLen) {
        pending.bytes.set(segment.subarray(off, off + here), pending.filled);
        pending.filled += here;
        if (pending.filled === pending.bytes.length) {
          finish(pending.bytes);
          pending = null;
        }
      } else pending = null; // the start of this record is not ours: skip its rest
      if (here < remLen) continue; // the record goes on over the next page
      off = page + maxAlign(off - page + here);
    } else pending = null;

    while (off + 4 <= pageEnd) {
      const total = view.getUint32(off, true);
      if (total === 0) return out; // the end of the WAL written so far
      if (total < RECORD_HEADER) return out;
      const here = Math.min(total, pageEnd - off);
      if (here === total) {
        finish(segment.subarray(off, off + total));
        off += maxAlign(total);
        continue;
      }
      pending = { bytes: new Uint8Array(total), filled: here };
      pending.bytes.set(segment.subarray(off, off + here));
      break;
    }
  }
  if (pending) out.carry = { segno: segno + 1, bytes: pending.bytes, filled: pending.filled };
  return out;
}
