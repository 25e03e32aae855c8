import type { Db } from "../db/client.ts";

/** Who did it: a person or client behind a token, or snapdb itself (scheduler, runner, CLI). */
export interface Actor {
  type: "user" | "system";
  id: string;
}

/** What every service function receives: no HTTP in sight, so the scheduler and CLI can call it too. */
export interface ServiceContext {
  db: Db;
  orgId: string;
  actor: Actor;
  requestId: string | null;
  ip: string | null;
}
