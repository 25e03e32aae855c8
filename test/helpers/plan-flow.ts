import { must, waitForStatus } from "./api-flow.ts";
import type { Harness } from "./harness.ts";

/** Restore plan steps of the public API that the drill tests repeat. */
export async function createPlan(h: Harness, token: string, body: Record<string, unknown>) {
  return must(h, token, "POST", "/restore-plans", { name: `plan-${crypto.randomUUID().slice(0, 8)}`, scheduleCron: "0 4 1 1 *", enabled: false, ...body }, 201);
}

/** Runs a plan now and waits for its run (a restore) to finish. */
export async function runPlan(h: Harness, token: string, planId: string, ms = 60_000) {
  const queued = await must(h, token, "POST", `/restore-plans/${planId}/run-now`, undefined, 202);
  return waitForStatus(h, token, `/restores/${queued.id}`, undefined, ms);
}

/** Audit actions recorded for a target (plan, restore), oldest first. */
export async function actionsOf(h: Harness, token: string, targetId: string): Promise<string[]> {
  return (await must(h, token, "GET", `/audit-log?targetId=${targetId}&limit=200`)).items.map((e: any) => e.action).reverse();
}
