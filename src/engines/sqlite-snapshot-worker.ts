/**
 * Runs `VACUUM INTO` off the daemon's event loop: a consistent snapshot of a live SQLite
 * database (one read transaction, writers keep writing in WAL mode), written compact to
 * `dst`. A Worker because the call is synchronous and can take minutes on a large file.
 */
import { Database } from "bun:sqlite";
import { SQLITE_READONLY_NOFOLLOW } from "./sqlite-path.ts";

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ src: string; dst: string }>) => {
  const { src, dst } = event.data;
  try {
    // `src` is the checked real path: no symlink anywhere in it, now or by the time SQLite opens it.
    const db = new Database(src, SQLITE_READONLY_NOFOLLOW);
    try {
      db.run("PRAGMA busy_timeout = 10000");
      db.run("VACUUM INTO ?", [dst]);
    } finally {
      db.close();
    }
    postMessage({ ok: true });
  } catch (err) {
    postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) });
  }
};
