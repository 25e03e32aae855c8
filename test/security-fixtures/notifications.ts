import type { Fixtures, RouteFixture } from "../helpers/security-suite.ts";

let n = 0;

/** A webhook channel in `org` (never contacted: the other org's call stops at 404). */
const channel: RouteFixture = {
  async params(h, org) {
    const token = await h.token(org);
    const res = await h.call("POST", "/notification-channels", {
      token,
      body: { name: `security-fixture-${++n}`, type: "webhook", config: { url: "http://127.0.0.1:9/hook", secret: "fixture-secret-0123456789" } },
    });
    if (res.status !== 201) throw new Error(`channel fixture: ${res.status} ${res.text}`);
    return { id: res.body.id };
  },
  body: () => ({ name: `renamed-${++n}` }),
};

const rule: RouteFixture = {
  async params(h, org) {
    const { id: channelId } = await channel.params(h, org);
    const res = await h.call("POST", "/notification-rules", { token: await h.token(org), body: { channelId, events: ["backup.failed"] } });
    if (res.status !== 201) throw new Error(`rule fixture: ${res.status} ${res.text}`);
    return { id: res.body.id };
  },
  body: () => ({ events: ["backup.succeeded"] }),
};

export const fixtures: Fixtures = {
  "/notification-channels/{id}": channel,
  "/notification-channels/{id}/test": { params: channel.params },
  "/notification-rules/{id}": rule,
};
