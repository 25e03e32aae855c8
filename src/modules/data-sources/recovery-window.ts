import { t } from "elysia";
import { isoOf } from "../../lib/clock.ts";
import type { ServiceContext } from "../../lib/context.ts";
import { recoveryWindowOf } from "../../runner/recovery-window.ts";
import { findDataSource } from "./service.ts";

export const RecoveryWindow = t.Object(
  {
    from: t.Union([t.String({ format: "date-time" }), t.Null()], {
      description: "The earliest instant a point-in-time restore can reach: when the oldest base backup whose WAL is archived without a gap up to `to` finished. Null: no such base backup yet.",
    }),
    to: t.Union([t.String({ format: "date-time" }), t.Null()], {
      description:
        "The latest instant: the end of the last transaction in the archived WAL (rounded up to the millisecond), or `from` when none ended since. " +
        "WAL is archived a segment at a time (16 MB by default): what the server wrote since its last finished segment is not in the window yet (the server's archive_timeout bounds that). " +
        "A gap in the archive ends the window there until a base backup is taken after it.",
    }),
  },
  { $id: "#/components/schemas/RecoveryWindow", title: "RecoveryWindow" },
);

/** The source's recovery window; both ends null when it has no usable base backup. */
export async function getRecoveryWindow(ctx: ServiceContext, id: string) {
  const source = await findDataSource(ctx.db, ctx.orgId, id);
  const window = await recoveryWindowOf(ctx.db, source.id);
  return window ? { from: isoOf(window.from), to: isoOf(window.to) } : { from: null, to: null };
}
