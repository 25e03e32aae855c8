import { mintToken, parseTtl } from "../crypto/jwt-mint.ts";
import { METRICS_SCOPE, SCOPES } from "../http/auth.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, UsageError, type Command } from "./command.ts";
import { hsSecret, loadFromArgs } from "./runtime.ts";

export const tokenCommand: Command = {
  name: "token",
  summary: "mint an API token with the local signing secret",
  usage: `snapdb token --org ORG --sub ID [--scope SCOPE]... [--ttl 1h]

Prints only the token on stdout, so that: TOKEN=$(snapdb token --org acme --sub me)
Signs with SNAPDB_JWT_SECRET, or the secret generated in the data dir.

  --org ORG       organisation (the org_id claim)
  --sub ID        actor id (the sub claim)
  --scope SCOPE   repeatable or space-separated; default all: ${SCOPES.join(" ")}
                  (${METRICS_SCOPE}, for /metrics when http.metricsPublic = false, only when asked)
  --ttl DURATION  lifetime: 90s, 15m, 1h, 7d (default 1h; at most auth.maxTokenLifetimeSeconds)

${CONFIG_HELP}`,
  options: {
    ...CONFIG_OPTIONS,
    org: { type: "string" },
    sub: { type: "string" },
    scope: { type: "string", multiple: true },
    ttl: { type: "string" },
  },
  async run(values) {
    const org = values.org;
    const sub = values.sub;
    if (typeof org !== "string" || !org) throw new UsageError("--org is required");
    if (typeof sub !== "string" || !sub) throw new UsageError("--sub is required");
    const ttl = parseTtl(typeof values.ttl === "string" ? values.ttl : "1h");
    if (ttl === null) throw new UsageError("--ttl must look like 90s, 15m, 1h or 7d");
    const scopes = (values.scope as string[] | undefined)?.flatMap((s) => s.split(/\s+/)).filter(Boolean) ?? [...SCOPES];
    const known: readonly string[] = [...SCOPES, METRICS_SCOPE];
    const unknown = scopes.filter((s) => !known.includes(s));
    if (unknown.length) throw new UsageError(`unknown scope ${unknown.join(", ")}; known: ${known.join(" ")}`);
    const config = loadFromArgs(values);
    const max = config.auth.maxTokenLifetimeSeconds;
    if (ttl > max) throw new UsageError(`--ttl is longer than auth.maxTokenLifetimeSeconds (${max} s): the daemon would refuse the token`);
    const secret = hsSecret(config);
    if (!secret) throw new UsageError("this daemon verifies tokens with a public key or JWKS: mint them with your identity provider");
    const token = await mintToken({
      secret,
      orgId: org,
      sub,
      scopes,
      ttlSeconds: ttl,
      audience: config.auth.audience,
      issuer: config.auth.issuer || undefined,
      orgClaim: config.auth.orgClaim,
    });
    process.stdout.write(token + "\n");
    return 0;
  },
};
