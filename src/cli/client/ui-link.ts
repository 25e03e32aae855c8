import { UsageError, type Command } from "../command.ts";
import { parseTtl } from "../../crypto/jwt-mint.ts";
import { ApiClient } from "./api.ts";
import { apiBaseUrl, CLIENT_OPTIONS, mintingSource } from "./connect.ts";
import { loadFromArgs } from "../runtime.ts";

/** The one scope the dashboard reads with: it never changes anything. */
const DASHBOARD_SCOPES = ["backup.read"];

export const uiLinkCommand: Command = {
  name: "ui-link",
  summary: "print a one-time login link to the dashboard (/ui/)",
  usage: `snapdb ui-link --org ORG [--ttl 1h] [--url URL]
snapdb ui-link --token JWT [--url URL]

Prints <base>/ui/#code=<one-time code>. The daemon keeps only the code's hash, for 5
minutes; opening the link exchanges it once for a read-only token (scope backup.read)
that the page keeps in memory only. The code is in the URL's fragment, which browsers
never send to a server or put in a Referer.

  --org ORG        mint the read-only token here, with the daemon's signing secret (on its host)
  --ttl DURATION   how long the dashboard's token lasts: 15m, 1h, 8h (default 1h; at most
                   auth.maxTokenLifetimeSeconds)
  --token JWT      use this token instead (env SNAPDB_TOKEN); it must be read-only
  --url URL        the daemon's API (env SNAPDB_URL; default: the config's listen address)
  --public-url URL the base the browser opens (default http.publicUrl, else --url)
  --config FILE, --data-dir DIR, --listen HOST:PORT   the daemon's config, as for 'serve'`,
  options: { ...CLIENT_OPTIONS, ttl: { type: "string" }, "public-url": { type: "string" } },
  async run(values) {
    const env = process.env;
    let config: ReturnType<typeof loadFromArgs> | null = null;
    const getConfig = () => (config ??= loadFromArgs(values, env));
    const base = apiBaseUrl(values, getConfig, env);
    const given = typeof values.token === "string" && values.token ? values.token : env.SNAPDB_TOKEN || undefined;
    const org = typeof values.org === "string" && values.org ? values.org : env.SNAPDB_ORG || undefined;
    if (!given && !org) throw new UsageError("--org ORG (or SNAPDB_ORG, or --token) is required");
    const ttl = parseTtl(typeof values.ttl === "string" ? values.ttl : "1h");
    if (ttl === null) throw new UsageError("--ttl must look like 15m, 1h or 8h");
    const tokens = given ? { get: async () => given } : mintingSource(getConfig(), { org: org!, scopes: DASHBOARD_SCOPES, ttlSeconds: ttl });
    const api = new ApiClient(base, tokens);
    const issued = await api.post<{ code: string; expiresAt: string }>("/ui/login-codes");
    const publicUrl = (typeof values["public-url"] === "string" && values["public-url"]) || (!values.url && !env.SNAPDB_URL ? getConfig().http.publicUrl : "") || base;
    process.stdout.write(`${publicUrl.replace(/\/+$/, "")}/ui/#code=${issued.code}\n`);
    process.stderr.write(`open it once, before ${issued.expiresAt}\n`);
    return 0;
  },
};
