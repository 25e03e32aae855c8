import type { Config } from "../config/schema.ts";
import type { ChannelSecret, ChannelSettings } from "./channel-secret.ts";
import type { NotifyEvent } from "./events.ts";
import { retryAfterMs, type HttpAnswer } from "./http-send.ts";
import type { Message } from "./message.ts";

/** A delivery as a channel sends it: the same id, event and data on every attempt. */
export interface OutgoingDelivery {
  id: string;
  orgId: string;
  event: NotifyEvent;
  occurredAt: number;
  data: Record<string, unknown>;
}

export interface SendInput {
  delivery: OutgoingDelivery;
  settings: ChannelSettings;
  secret: ChannelSecret;
  message: Message;
  /** httpPost with the daemon's outbound policy, timeout and shutdown signal applied. */
  post(url: string, headers: Record<string, string>, body: string): Promise<HttpAnswer>;
  smtp: Config["notify"]["smtp"];
  timeoutMs: number;
}

/** How an attempt ended. `retry`: try again later (network, 429, 5xx); otherwise final. */
export type Outcome = { ok: true } | { ok: false; retry: boolean; retryAfterMs?: number | null; error: string };

export type ChannelSend = (input: SendInput) => Promise<Outcome>;

export const USER_AGENT = "snapdb-notifications";

/**
 * A receiver's text as one line for `lastError`: whitespace and control characters (NUL
 * included, which a PostgreSQL store cannot keep in text) become single spaces.
 */
export const oneLine = (text: string) => text.replace(/[\s\u0000-\u001f\u007f]+/g, " ").trim();

/** 2xx delivered; 429 and 5xx retried (Retry-After honoured); anything else is final. */
export function outcomeOfHttp(answer: HttpAnswer, host: string): Outcome {
  if (answer.status >= 200 && answer.status < 300) return { ok: true };
  const snippet = oneLine(answer.snippet).slice(0, 200);
  const error = `${host} answered HTTP ${answer.status}${snippet ? `: ${snippet}` : ""}`;
  if (answer.status === 429 || answer.status >= 500) return { ok: false, retry: true, retryAfterMs: retryAfterMs(answer.headers["retry-after"]), error };
  if (answer.status >= 300 && answer.status < 400) return { ok: false, retry: false, error: `${error} (redirects are not followed)` };
  return { ok: false, retry: false, error };
}

export const hostOf = (url: string) => {
  try {
    return new URL(url).host;
  } catch {
    return "(invalid URL)";
  }
};
