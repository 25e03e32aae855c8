import { dlopen, FFIType, read } from "bun:ffi";
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";

/*
 * One process owns a data dir: `serve` for its whole life, `migrate` and
 * `rotate-master-key` while they run. A second daemon would otherwise fail the first one's
 * running jobs as "interrupted" at its start and delete their temp files.
 *
 * The lock is flock(2) on <dataDir>/snapdb.lock, called through libc by FFI (Bun has no
 * flock; FFI works in the compiled binary too). The kernel drops it when the process dies,
 * kill -9 included, so there is no stale lock to clean up. The file holds the owner's pid
 * and command, for the message a refused process prints; it is never deleted (unlinking a
 * flock'd file lets two processes lock two different files).
 */

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_FILE = "snapdb.lock";

export const lockFileOf = (dataDir: string) => join(dataDir, LOCK_FILE);

/** The data dir is locked by another process. */
export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holderPid: number | null,
    readonly holderCommand: string | null,
  ) {
    const holder = holderPid ? `snapdb ${holderCommand ?? "process"} (pid ${holderPid})` : "another snapdb process (pid unknown)";
    super(`the data dir ${dataDir} is in use by ${holder}: one snapdb process per data dir`);
    this.name = "DataDirLockedError";
  }
}

/** The store is in use by a daemon in a way this command cannot work with. */
export class StoreInUseError extends Error {
  override name = "StoreInUseError";
}

interface Libc {
  flock(fd: number, op: number): number;
  errno(): number;
  /** EWOULDBLOCK on this platform. */
  wouldBlock: number;
}

let libc: Libc | null = null;

function loadLibc(): Libc {
  if (libc) return libc;
  const darwin = process.platform === "darwin";
  const candidates = darwin ? ["libSystem.B.dylib"] : ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`, "libc.so"];
  const errnoSymbol = darwin ? "__error" : "__errno_location";
  for (const name of candidates) {
    try {
      const lib = dlopen(name, {
        flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
        [errnoSymbol]: { args: [], returns: FFIType.ptr },
      });
      const errnoPtr = lib.symbols[errnoSymbol] as () => number | null;
      libc = {
        flock: (fd, op) => lib.symbols.flock(fd, op) as number,
        errno: () => {
          const p = errnoPtr();
          return p ? read.i32(p as never, 0) : 0;
        },
        wouldBlock: darwin ? 35 : 11,
      };
      return libc;
    } catch {
      // not this name: try the next one
    }
  }
  throw new Error(`cannot load the C library (tried ${candidates.join(", ")}) to lock the data dir`);
}

function readHolder(file: string): { pid: number | null; command: string | null } {
  try {
    const [pid, command] = readFileSync(file, "utf8").trim().split(/\s+/);
    const n = Number(pid);
    return { pid: Number.isInteger(n) && n > 0 ? n : null, command: command || null };
  } catch {
    return { pid: null, command: null };
  }
}

export interface DataDirLock {
  readonly file: string;
  /** Gives the lock up (the process exiting does too). */
  release(): void;
}

/**
 * Takes the data dir's lock without waiting, or throws DataDirLockedError naming the holder.
 * `command` is written into the lock file beside the pid (for the holder's description).
 */
export function lockDataDir(dataDir: string, command: string): DataDirLock {
  const c = loadLibc();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = lockFileOf(dataDir);
  // Opened without truncating: the holder's pid stays readable for whoever is refused.
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT, 0o600);
  if (c.flock(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = c.errno();
    closeSync(fd);
    if (errno !== c.wouldBlock) throw new Error(`cannot lock ${file} (errno ${errno})`);
    throw new DataDirLockedError(dataDir, ...holderOf(file));
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid} ${command}\n`, 0);
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      // Closing the descriptor drops the flock; the stale pid in the file is harmless.
      closeSync(fd);
    },
  };
}

/** The holder may be between taking the lock and writing its pid: give it a moment. */
function holderOf(file: string): [number | null, string | null] {
  let holder = readHolder(file);
  for (let i = 0; i < 20 && holder.pid === null; i++) {
    Bun.sleepSync(10);
    holder = readHolder(file);
  }
  return [holder.pid, holder.command];
}
