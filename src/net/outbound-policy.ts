import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { cidrContains, loopbackAlias, parseCidr, parseIp, type Cidr, type IpAddress } from "./cidr.ts";

/**
 * Where the daemon may connect on a tenant's behalf. Data source hosts and the endpoints of
 * tenant S3 destinations are tenant input: without a policy, a tenant could make the daemon
 * talk to the cloud metadata service, or to anything else only the daemon's host can reach.
 *
 * A host name is resolved and EVERY address it resolves to is checked (a name resolving to
 * one allowed and one denied address is refused); the caller then connects to the checked
 * address itself (never to the name again), so a DNS answer that changes between the check
 * and the connection (rebinding) changes nothing. Denied: an address in `denyCidrs`, or, when
 * `allowCidrs` is not empty, one outside it; deny wins over allow. `0.0.0.0/8` and `::` reach
 * the loopback interface, so they are also checked as 127.0.0.1 and ::1.
 */
export interface NetworkPolicyConfig {
  denyCidrs: readonly string[];
  allowCidrs: readonly string[];
}

export class OutboundError extends Error {
  /** A network-error code, so code that classifies socket errors sees an unreachable peer. */
  readonly code: string;
  constructor(
    readonly kind: "denied" | "unresolved",
    readonly host: string,
    message: string,
  ) {
    super(message);
    this.name = "OutboundError";
    this.code = kind === "denied" ? "EOUTBOUNDDENIED" : "ENOTFOUND";
  }
}

/** The first OutboundError in an error's cause chain (SDKs wrap socket errors). */
export function outboundErrorOf(err: unknown): OutboundError | null {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof OutboundError) return e;
  }
  return null;
}

const DNS_TIMEOUT_MS = 10_000;

function parseList(list: readonly string[], key: string): Cidr[] {
  return list.map((text, i) => {
    const cidr = parseCidr(text);
    if (!cidr) throw new Error(`${key}.${i}: ${JSON.stringify(text)} is not a CIDR`);
    return cidr;
  });
}

export class OutboundPolicy {
  private constructor(
    private readonly deny: Cidr[],
    private readonly allow: Cidr[],
  ) {}

  /** From the validated `network` config section (a malformed CIDR throws: config loading reports it first). */
  static fromConfig(network: NetworkPolicyConfig): OutboundPolicy {
    return new OutboundPolicy(parseList(network.denyCidrs, "network.denyCidrs"), parseList(network.allowCidrs, "network.allowCidrs"));
  }

  private allowsIp(ip: IpAddress): boolean {
    const alias = loopbackAlias(ip);
    for (const candidate of alias ? [ip, alias] : [ip]) {
      if (this.deny.some((c) => cidrContains(c, candidate))) return false;
      if (this.allow.length && !this.allow.some((c) => cidrContains(c, candidate))) return false;
    }
    return true;
  }

  /** Whether an IP literal may be connected to; anything that is not an IP literal is not. */
  allows(address: string): boolean {
    const ip = parseIp(address);
    return ip !== null && this.allowsIp(ip);
  }

  private denied(host: string, address: string): OutboundError {
    const what = host === address ? address : `${host} resolves to ${address}, which`;
    return new OutboundError("denied", host, `${what} is refused by the daemon's outbound network policy (network.denyCidrs / network.allowCidrs)`);
  }

  /**
   * Every address of `host` (an IP literal is its own single address), each checked; throws
   * OutboundError when the name does not resolve or any address is refused.
   */
  async resolveAll(host: string, timeoutMs = DNS_TIMEOUT_MS): Promise<LookupAddress[]> {
    const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
    const literal = parseIp(bare);
    if (literal) {
      if (!this.allowsIp(literal)) throw this.denied(host, bare);
      return [{ address: bare, family: bare.includes(":") ? 6 : 4 }];
    }
    const addresses = await new Promise<LookupAddress[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new OutboundError("unresolved", host, `${host} did not resolve within ${timeoutMs / 1000} s`)), timeoutMs);
      dnsLookup(bare, { all: true, verbatim: true }, (err, list) => {
        clearTimeout(timer);
        if (err || !list?.length) reject(new OutboundError("unresolved", host, `${host} does not resolve (${err?.code ?? "no address"})`));
        else resolve(list);
      });
    });
    for (const a of addresses) if (!this.allows(a.address)) throw this.denied(host, a.address);
    return addresses;
  }

  /** The address to connect to for `host`, checked (see resolveAll). */
  async resolve(host: string, timeoutMs = DNS_TIMEOUT_MS): Promise<string> {
    return (await this.resolveAll(host, timeoutMs))[0]!.address;
  }

  /**
   * Refuses a URL whose host is a denied IP literal. HTTP clients do not look IP literals
   * up, so the agents' lookup below never sees them. (`new URL` normalizes `2130706433`,
   * `127.1` and `[::ffff:7f00:1]`-style spellings to the address a client connects to.)
   */
  checkUrl(url: string): void {
    const host = new URL(url).hostname;
    const bare = host.startsWith("[") ? host.slice(1, -1) : host;
    if (parseIp(bare) && !this.allows(bare)) throw this.denied(host, bare);
  }

  /**
   * node:http(s) agents whose every connection goes through the policy: host names are
   * resolved by `resolveAll` (so the socket connects to a checked address). Pair them with
   * `checkUrl` for IP literals.
   */
  agents(): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
    const lookup = (hostname: string, options: unknown, callback?: unknown) => {
      const cb = (typeof options === "function" ? options : callback) as (err: Error | null, address?: string | LookupAddress[], family?: number) => void;
      const all = typeof options === "object" && options !== null && (options as { all?: boolean }).all === true;
      this.resolveAll(hostname).then(
        (list) => (all ? cb(null, list) : cb(null, list[0]!.address, list[0]!.family)),
        (err: Error) => cb(err),
      );
    };
    // The AWS SDK's own defaults (keep-alive, 50 sockets), plus the lookup.
    const options = { keepAlive: true, maxSockets: 50, lookup } as ConstructorParameters<typeof HttpAgent>[0];
    return { httpAgent: new HttpAgent(options), httpsAgent: new HttpsAgent(options) };
  }
}
