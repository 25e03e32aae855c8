import { must } from "./api-flow.ts";
import type { Harness } from "./harness.ts";

/** Steps of the notification API that several tests repeat (each checks its status). */
export const createChannel = (h: Harness, token: string, type: string, config: Record<string, unknown>, name = `ch-${crypto.randomUUID().slice(0, 8)}`) =>
  must(h, token, "POST", "/notification-channels", { name, type, config }, 201);

export const createRule = (h: Harness, token: string, body: Record<string, unknown>) => must(h, token, "POST", "/notification-rules", body, 201);

export async function deliveries(h: Harness, token: string, query = ""): Promise<any[]> {
  return (await must(h, token, "GET", `/notification-deliveries?limit=200${query ? `&${query}` : ""}`)).items;
}

/** Polls the delivery log until delivery `id` satisfies `done` (default: no longer pending). */
export async function waitForDelivery(h: Harness, token: string, id: string, done = (d: any) => d.status !== "pending", ms = 30_000): Promise<any> {
  const until = Date.now() + ms;
  for (;;) {
    const d = (await deliveries(h, token)).find((x) => x.id === id);
    if (d && done(d)) return d;
    if (Date.now() > until) throw new Error(`delivery ${id} not done within ${ms} ms: ${JSON.stringify(d)}`);
    await Bun.sleep(50);
  }
}
