import { userInfo } from "node:os";
import type { Config } from "../../config/schema.ts";
import { mintToken } from "../../crypto/jwt-mint.ts";
import { SCOPES } from "../../http/auth.ts";
import { CONFIG_OPTIONS, UsageError } from "../command.ts";
import { localBaseUrl } from "../ready.ts";
import { hsSecret, loadFromArgs } from "../runtime.ts";
import { ApiClient, type TokenSource } from "./api.ts";

type Values = Record<string, unknown>;

/** Flags of every command that talks to the API. */
export const CLIENT_OPTIONS = {
  ...CONFIG_OPTIONS,
  url: { type: "string" },
  token: { type: "string" },
  org: { type: "string" },
} as const;

export const CLIENT_HELP = `Where it talks (the API, with a bearer token):
  --url URL      the daemon (env SNAPDB_URL; default: http:// + the config's listen address)
  --token JWT    the bearer token (env SNAPDB_TOKEN)
  --org ORG      no token? On the daemon's host, with read access to its signing secret,
                 mint a 5-minute token for ORG with every tenant scope (env SNAPDB_ORG)
  --config FILE, --data-dir DIR, --listen HOST:PORT   the daemon's config, as for 'serve'`;

/** Minted tokens live 5 minutes; one is replaced a minute before it runs out (a long --wait outlives several). */
const MINTED_TTL_SECONDS = 300;
const RENEW_BEFORE_MS = 60_000;

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);

/** The config, read only when a default is needed from it (a URL, the signing secret). */
function lazyConfig(values: Values, env: NodeJS.ProcessEnv): () => Config {
  let config: Config | null = null;
  return () => (config ??= loadFromArgs(values, env));
}

/** The daemon's base URL: the flag, the env, else the listen address of its config (wildcard → loopback). */
export function apiBaseUrl(values: Values, config: () => Config, env = process.env): string {
  const given = str(values.url) ?? str(env.SNAPDB_URL);
  if (given) {
    if (!/^https?:\/\//i.test(given)) throw new UsageError(`--url must start with http:// or https:// (got "${given}")`);
    return given.replace(/\/+$/, "");
  }
  const c = config();
  if (!c.listen.endsWith(":0")) return localBaseUrl(c.listen);
  if (c.http.publicUrl) return c.http.publicUrl.replace(/\/+$/, "");
  throw new UsageError("the config listens on port 0 (a random port): pass --url");
}

/** The daemon's HS256 signing secret, read (never created), or a usage error that says what to do. */
function signingSecret(config: Config): Uint8Array {
  const file = config.auth.jwtSecretFile;
  let secret: Uint8Array | null;
  try {
    secret = hsSecret(config, { create: false });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UsageError(`no signing secret at ${file}: run this on the daemon's host with its config (--config, --data-dir), or pass --token`);
    if (code === "EACCES" || code === "EPERM") throw new UsageError(`cannot read the signing secret ${file} (${code}): run as the daemon's user (sudo -u snapdb …), or pass --token`);
    throw err;
  }
  if (!secret) throw new UsageError("this daemon verifies tokens with a public key or JWKS: get a token from your identity provider and pass --token");
  return secret;
}

export interface MintOptions {
  org: string;
  scopes: readonly string[];
  ttlSeconds: number;
  sub?: string;
}

/** A token minted here with the daemon's own secret and claims (as `snapdb token` does). */
export function mintingSource(config: Config, opts: MintOptions): TokenSource & { ttlSeconds: number } {
  const secret = signingSecret(config);
  const ttlSeconds = Math.min(opts.ttlSeconds, config.auth.maxTokenLifetimeSeconds);
  let current: { token: string; renewAt: number } | null = null;
  return {
    ttlSeconds,
    async get() {
      if (current && Date.now() < current.renewAt) return current.token;
      const token = await mintToken({
        secret,
        orgId: opts.org,
        sub: opts.sub ?? `cli:${safeUser()}`,
        scopes: [...opts.scopes],
        ttlSeconds,
        audience: config.auth.audience,
        issuer: config.auth.issuer || undefined,
        orgClaim: config.auth.orgClaim,
      });
      current = { token, renewAt: Date.now() + Math.max(ttlSeconds * 1000 - RENEW_BEFORE_MS, (ttlSeconds * 1000) / 2) };
      return token;
    },
  };
}

function safeUser(): string {
  try {
    return userInfo().username || "unknown";
  } catch {
    return "unknown";
  }
}

export interface Connection {
  api: ApiClient;
  config: () => Config;
}

/** The API client of a command: URL and token from flags, env, or the local daemon's config. */
export function connect(values: Values, env = process.env): Connection {
  const config = lazyConfig(values, env);
  const baseUrl = apiBaseUrl(values, config, env);
  const token = str(values.token) ?? str(env.SNAPDB_TOKEN);
  if (token) return { api: new ApiClient(baseUrl, { get: async () => token }), config };
  const org = str(values.org) ?? str(env.SNAPDB_ORG);
  if (!org) throw new UsageError("no token: pass --token (or set SNAPDB_TOKEN), or --org ORG (or set SNAPDB_ORG) on the daemon's host");
  return { api: new ApiClient(baseUrl, mintingSource(config(), { org, scopes: SCOPES, ttlSeconds: MINTED_TTL_SECONDS })), config };
}
