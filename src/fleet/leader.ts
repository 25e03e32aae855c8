import { SQL } from "bun";
import type { Logger } from "../lib/logger.ts";

/**
 * What only one node of a fleet may do at a time: fire schedules, send notifications, sweep
 * retention, archive WAL. `elected` starts them, `deposed` stops them; both are awaited in
 * turn, never overlapping.
 */
export interface LeaderDuties {
  elected(): Promise<void>;
  deposed(): Promise<void>;
}

export interface Leadership {
  readonly isLeader: boolean;
  start(): Promise<void>;
  /** Stops the duties (when leading) and gives up the lock. */
  stop(): Promise<void>;
}

/** The embedded store has one node: it leads from start to stop. */
export function soleLeader(duties: LeaderDuties): Leadership {
  let leading = false;
  return {
    get isLeader() {
      return leading;
    },
    async start() {
      leading = true;
      await duties.elected();
    },
    async stop() {
      if (!leading) return;
      leading = false;
      await duties.deposed();
    },
  };
}

/** The session-level advisory lock every node of a fleet competes for (two-int key space: 'snap', 1). */
const LOCK = { classId: 0x736e6170, objId: 1 };

export interface PgLeadershipOptions {
  /** The store's URL: the lock lives on a connection of its own, not on one of the pool's. */
  url: string;
  /** runner.leaseSeconds in ms: a dead leader is replaced within it. */
  leaseMs: number;
  logger: Logger;
  nodeId: string;
}

/**
 * Leader election on the shared PostgreSQL store: the leader holds a session advisory lock
 * on a dedicated connection. PostgreSQL drops the lock with the session, so a leader that is
 * killed (its socket closes) frees it at once, and one cut off from the store loses it when
 * the server ends its idle session (`idle_session_timeout` = the lease, while the leader
 * checks in every third of it). Every third of the lease the others try to take the lock
 * and the leader checks that its session still holds it (asked of pg_locks, so a silent
 * reconnect of the client cannot pass for the old session); a leader that cannot tell steps
 * down. A leader cut off from the store stops within half the lease; the server frees its
 * lock only after the whole lease without a word from it, so the next leader starts later:
 * their duties do not overlap. They can for up to a third of the lease when the server ends
 * the session itself (a restart, pg_terminate_backend) or a node is frozen for longer than
 * the lease; even then a scheduled minute fires once (the unique slot) and a notification is
 * sent at least once, as always.
 */
export function pgLeadership(opts: PgLeadershipOptions, duties: LeaderDuties): Leadership {
  const every = Math.max(500, Math.floor(opts.leaseMs / 3));
  let client: SQL | null = null;
  let leading = false;
  let timer: ReturnType<typeof setInterval> | null = null;
  let turn: Promise<void> = Promise.resolve();
  let stopped = false;

  const withTimeout = async <T>(work: Promise<T>): Promise<T> => {
    let t: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      // Half a turn: a leader cut off from the store must step down well before the server
      // (idle_session_timeout = the lease) frees the lock for the next one.
      t = setTimeout(() => reject(new Error("the store did not answer in time")), Math.floor(every / 2));
    });
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(t);
    }
  };

  const dropClient = async () => {
    const c = client;
    client = null;
    await c?.close({ timeout: 0 }).catch(() => {});
  };

  const tryAcquire = async () => {
    client ??= new SQL(opts.url, { max: 1, idleTimeout: 0, connectionTimeout: Math.ceil(every / 1000) });
    const c = client;
    const rows = await withTimeout(
      c.begin(async (tx) => {
        // For the session's life (is_local false). PostgreSQL before 14 has no idle_session_timeout:
        // there a leader cut off without its socket closing keeps the lock until TCP gives up.
        await tx.unsafe(`SELECT CASE WHEN current_setting('server_version_num')::int >= 140000 THEN set_config('idle_session_timeout', '${Math.ceil(opts.leaseMs)}', false) END`);
        return tx`SELECT pg_try_advisory_lock(${LOCK.classId}::int, ${LOCK.objId}::int) AS ok`;
      }),
    );
    return rows[0]?.ok === true;
  };

  const stillHeld = async () => {
    if (!client) return false;
    const rows = await withTimeout(
      client`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
               AND classid = ${LOCK.classId}::int::oid AND objid = ${LOCK.objId}::int::oid AND objsubid = 2`,
    );
    return rows[0]?.n === 1;
  };

  const step = async () => {
    if (stopped) return;
    if (leading) {
      let held = false;
      try {
        held = await stillHeld();
      } catch (error) {
        opts.logger.warn("leader: the store did not confirm the lock", { error });
      }
      if (held) return;
      leading = false;
      opts.logger.warn("leader: lost the leader lock, stepping down", { nodeId: opts.nodeId });
      await dropClient();
      await duties.deposed().catch((error) => opts.logger.error("leader: stopping the leader's duties failed", { error }));
      return;
    }
    let won = false;
    try {
      won = await tryAcquire();
    } catch (error) {
      opts.logger.debug("leader: could not ask for the lock", { error });
      await dropClient();
      return;
    }
    if (!won || stopped) return;
    leading = true;
    opts.logger.info("leader: this node leads the fleet (scheduler, notifications, retention, WAL archiving)", { nodeId: opts.nodeId });
    await duties.elected().catch((error) => opts.logger.error("leader: starting the leader's duties failed", { error }));
  };

  const next = () => {
    turn = turn.then(step, step);
    return turn;
  };

  return {
    get isLeader() {
      return leading;
    },
    async start() {
      await next();
      timer = setInterval(() => void next(), every);
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      await turn.catch(() => {});
      if (leading) {
        leading = false;
        await duties.deposed().catch((error) => opts.logger.error("leader: stopping the leader's duties failed", { error }));
      }
      // Closing the session frees the lock at once: another node takes over at its next try.
      await dropClient();
    },
  };
}
