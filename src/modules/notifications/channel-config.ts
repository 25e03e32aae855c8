import type { Config } from "../../config/schema.ts";
import { AppError, invalidInput } from "../../lib/errors.ts";
import type { OutboundPolicy } from "../../net/outbound-policy.ts";
import type { ChannelSecret, ChannelSettings } from "../../notify/channel-secret.ts";
import type { ChannelType } from "../../notify/events.ts";

/** A channel's `config` as the API takes it (every type's fields; `null` clears an optional one). */
export interface ConfigInput {
  url?: string;
  secret?: string;
  webhookUrl?: string;
  topic?: string;
  token?: string | null;
  to?: string[];
  from?: string | null;
  subjectPrefix?: string | null;
}

const FIELDS: Record<ChannelType, { required: (keyof ConfigInput)[]; optional: (keyof ConfigInput)[] }> = {
  webhook: { required: ["url", "secret"], optional: [] },
  slack: { required: ["webhookUrl"], optional: [] },
  discord: { required: ["webhookUrl"], optional: [] },
  teams: { required: ["webhookUrl"], optional: [] },
  ntfy: { required: ["url", "topic"], optional: ["token"] },
  email: { required: ["to"], optional: ["from", "subjectPrefix"] },
};

const ADDRESS = /^[^\s@<>"(),;:]+@[^\s@<>"(),;:]+\.[^\s@<>"(),;:]+$/;
const DISPLAY = /^[^<>\r\n"]{0,100}<([^<>]+)>$/;

export function isEmailAddress(text: string, display = false): boolean {
  const m = display ? DISPLAY.exec(text) : null;
  return ADDRESS.test(m ? m[1]! : text);
}

/** An http(s) URL without credentials or fragment whose host, when an IP, the outbound policy allows. */
export function checkChannelUrl(value: string, path: string, policy: OutboundPolicy): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidInput(path, "must be an absolute http(s) URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalidInput(path, "must be an http:// or https:// URL");
  if (url.username || url.password) throw invalidInput(path, "must not carry a user or password");
  if (url.hash) throw invalidInput(path, "must not have a #fragment");
  try {
    policy.checkUrl(url.href);
  } catch {
    throw invalidInput(path, "its address is refused by the daemon's outbound network policy (network.denyCidrs / network.allowCidrs)");
  }
  return url.href;
}

/**
 * Checks `input` for a channel of `type` and splits it into shown settings and the sealed
 * secret. With `before` (PATCH), given fields replace stored ones and the rest is kept.
 */
export function checkConfig(
  type: ChannelType,
  input: ConfigInput,
  deps: { config: Config; policy: OutboundPolicy },
  before?: { settings: ChannelSettings; secret: ChannelSecret },
): { settings: ChannelSettings; secret: ChannelSecret } {
  const { settings, secret } = checkFields(type, input, deps, before);
  // Which secret fields are set is not secret: answers say so without opening the seal.
  const secretFields = (Object.keys(secret) as (keyof ChannelSecret)[]).filter((k) => secret[k] !== undefined);
  return { settings: secretFields.length ? { ...settings, secretFields } : settings, secret };
}

function checkFields(
  type: ChannelType,
  input: ConfigInput,
  deps: { config: Config; policy: OutboundPolicy },
  before?: { settings: ChannelSettings; secret: ChannelSecret },
): { settings: ChannelSettings; secret: ChannelSecret } {
  const { required, optional } = FIELDS[type];
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (!required.includes(key as keyof ConfigInput) && !optional.includes(key as keyof ConfigInput)) throw invalidInput(`/config/${key}`, `${key} is not a field of a ${type} channel`);
    if (value === null && required.includes(key as keyof ConfigInput)) throw invalidInput(`/config/${key}`, `${key} is required`);
  }
  const merged: ConfigInput = { ...before?.settings, ...before?.secret, ...input };
  for (const key of required) if (merged[key] === undefined) throw invalidInput(`/config/${key}`, `${key} is required for a ${type} channel`);
  const given = (key: keyof ConfigInput) => input[key] !== undefined;
  switch (type) {
    case "webhook":
      return { settings: { url: given("url") ? checkChannelUrl(merged.url!, "/config/url", deps.policy) : merged.url }, secret: { secret: merged.secret } };
    case "slack":
    case "discord":
    case "teams": {
      const webhookUrl = given("webhookUrl") ? checkChannelUrl(merged.webhookUrl!, "/config/webhookUrl", deps.policy) : merged.webhookUrl!;
      return { settings: { webhookHost: new URL(webhookUrl).host }, secret: { webhookUrl } };
    }
    case "ntfy": {
      const url = given("url") ? checkChannelUrl(merged.url!, "/config/url", deps.policy).replace(/\/+$/, "") : merged.url;
      return { settings: { url, topic: merged.topic }, secret: { token: merged.token ?? undefined } };
    }
    case "email": {
      if (!deps.config.notify.smtp.host) {
        throw new AppError("INVALID_INPUT", "e-mail channels need the operator's SMTP relay (notify.smtp.host), which is not configured", [{ path: "/type", message: "no SMTP relay configured" }]);
      }
      merged.to!.forEach((address, i) => {
        if (!isEmailAddress(address)) throw invalidInput(`/config/to/${i}`, "must be an e-mail address, e.g. ops@example.com");
      });
      if (merged.from && !isEmailAddress(merged.from, true)) throw invalidInput("/config/from", 'must be an e-mail address, e.g. "snapdb <backups@example.com>"');
      if (!merged.from && !deps.config.notify.smtp.from) throw invalidInput("/config/from", "is required: the operator set no default sender (notify.smtp.from)");
      if (merged.subjectPrefix && /[\u0000-\u001f\u007f]/.test(merged.subjectPrefix)) throw invalidInput("/config/subjectPrefix", "must not contain control characters");
      const settings: ChannelSettings = { to: [...new Set(merged.to!)] };
      if (merged.from) settings.from = merged.from;
      if (merged.subjectPrefix !== null && merged.subjectPrefix !== undefined) settings.subjectPrefix = merged.subjectPrefix;
      return { settings, secret: {} };
    }
  }
}

/** The config as answers show it: no secret, only whether it is set. */
export function publicConfig(type: ChannelType, settings: ChannelSettings) {
  const hasSecret = (key: keyof ChannelSecret) => settings.secretFields?.includes(key) ?? false;
  switch (type) {
    case "webhook":
      return { url: settings.url, hasSecret: hasSecret("secret") };
    case "slack":
    case "discord":
    case "teams":
      return { webhookHost: settings.webhookHost, hasWebhookUrl: hasSecret("webhookUrl") };
    case "ntfy":
      return { url: settings.url, topic: settings.topic, hasToken: hasSecret("token") };
    case "email":
      return { to: settings.to, ...(settings.from ? { from: settings.from } : {}), ...(settings.subjectPrefix !== undefined ? { subjectPrefix: settings.subjectPrefix } : {}) };
  }
}
