import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { isNetworkHost } from "../../src/modules/data-sources/validate.ts";
import { parseCidr, parseIp } from "../../src/net/cidr.ts";
import { OutboundError, OutboundPolicy } from "../../src/net/outbound-policy.ts";
import { conninfoValue } from "../../src/engines/pg-conninfo.ts";

const policy = (denyCidrs: string[], allowCidrs: string[] = []) => OutboundPolicy.fromConfig({ denyCidrs, allowCidrs });
const DEFAULT = policy(["169.254.0.0/16", "fd00:ec2::254/128"]);

describe("CIDR parsing", () => {
  test("IPv4, IPv6, mapped ranges, bare addresses; host bits are cleared", () => {
    expect(parseCidr("10.1.2.3/8")).toMatchObject({ family: 4, prefix: 8, network: 0x0a000000n });
    expect(parseCidr("fd00::/8")).toMatchObject({ family: 6, prefix: 8 });
    expect(parseCidr("192.0.2.7")).toMatchObject({ family: 4, prefix: 32 });
    expect(parseCidr("::1")).toMatchObject({ family: 6, prefix: 128, network: 1n });
    // A mapped range is an IPv4 range.
    expect(parseCidr("::ffff:169.254.0.0/112")).toMatchObject({ family: 4, prefix: 16, network: 0xa9fe0000n });
    expect(parseCidr("0.0.0.0/0")).toMatchObject({ family: 4, prefix: 0 });
  });

  test("malformed ranges are null", () => {
    for (const bad of ["", "10.0.0.0/33", "fd00::/129", "10.0.0/8", "10.0.0.0/-1", "10.0.0.0/8/8", "example.com/8", "[::1]/128", "fe80::1%eth0/64", "::ffff:1.2.3.4/64", "10.0.0.0/ 8"]) {
      expect(parseCidr(bad)).toBeNull();
    }
  });

  test("addresses: mapped IPv6 in both spellings is the IPv4 address", () => {
    expect(parseIp("::ffff:169.254.169.254")).toEqual({ family: 4, value: 0xa9fea9fen });
    expect(parseIp("[::ffff:a9fe:a9fe]")).toEqual({ family: 4, value: 0xa9fea9fen });
    expect(parseIp("0:0:0:0:0:ffff:a9fe:a9fe")).toEqual({ family: 4, value: 0xa9fea9fen });
    expect(parseIp("fe80::1%eth0")).toEqual({ family: 6, value: (0xfe80n << 112n) | 1n });
    expect(parseIp("example.com")).toBeNull();
  });
});

describe("outbound policy", () => {
  test("the default denies the metadata service in every spelling, and allows the rest", () => {
    for (const denied of ["169.254.169.254", "169.254.0.1", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe", "fd00:ec2::254", "FD00:EC2:0:0:0:0:0:254"]) {
      expect(DEFAULT.allows(denied)).toBe(false);
    }
    for (const allowed of ["127.0.0.1", "10.0.0.1", "169.253.255.255", "169.255.0.0", "::1", "fd00:ec2::255", "2001:db8::1"]) {
      expect(DEFAULT.allows(allowed)).toBe(true);
    }
    expect(DEFAULT.allows("not-an-ip")).toBe(false);
  });

  test("IPv6 ranges match by prefix", () => {
    const p = policy(["2001:db8::/32"]);
    expect(p.allows("2001:db8:ffff::1")).toBe(false);
    expect(p.allows("2001:db9::1")).toBe(true);
    expect(p.allows("32.1.13.184")).toBe(true); // same bits as 2001:0db8, but IPv4
  });

  test("a mapped deny range covers the plain IPv4 address, and an IPv4 range covers the mapped one", () => {
    expect(policy(["::ffff:10.0.0.0/104"]).allows("10.9.9.9")).toBe(false);
    expect(policy(["10.0.0.0/8"]).allows("::ffff:10.9.9.9")).toBe(false);
  });

  test("0.0.0.0 and :: are loopback: denied with it", () => {
    const p = policy(["127.0.0.0/8", "::1/128"]);
    for (const a of ["127.0.0.1", "0.0.0.0", "0.1.2.3", "::", "::1", "::ffff:127.0.0.1", "::ffff:0.0.0.0"]) expect(p.allows(a)).toBe(false);
    expect(p.allows("10.0.0.1")).toBe(true);
  });

  test("allowCidrs: only those ranges, and deny still wins inside them", () => {
    const p = policy(["10.9.0.0/16"], ["10.0.0.0/8", "fd12::/16"]);
    expect(p.allows("10.1.2.3")).toBe(true);
    expect(p.allows("fd12::5")).toBe(true);
    expect(p.allows("10.9.1.1")).toBe(false);
    expect(p.allows("192.168.1.1")).toBe(false);
    expect(p.allows("::1")).toBe(false);
  });

  test("resolve: literals without DNS, names through it; every address must pass", async () => {
    expect(await DEFAULT.resolve("127.0.0.1")).toBe("127.0.0.1");
    expect(await DEFAULT.resolve("[::1]")).toBe("::1");
    expect(["127.0.0.1", "::1"]).toContain(await DEFAULT.resolve("localhost"));
    const denied = await policy(["127.0.0.0/8", "::1/128"])
      .resolve("localhost")
      .catch((e) => e);
    expect(denied).toBeInstanceOf(OutboundError);
    expect(denied.kind).toBe("denied");
    expect(denied.message).toContain("outbound network policy");
    const metadata = await DEFAULT.resolve("169.254.169.254").catch((e) => e);
    expect(metadata.kind).toBe("denied");
    const nowhere = await DEFAULT.resolve("no-such-host.invalid").catch((e) => e);
    expect(nowhere).toBeInstanceOf(OutboundError);
    expect(nowhere.kind).toBe("unresolved");
  });

  test("checkUrl refuses denied IP literals in the spellings URL parsing normalizes", () => {
    for (const url of ["http://169.254.169.254/", "http://2852039166/", "http://169.254.43518/", "http://[::ffff:169.254.169.254]:80/", "http://169.254.169.254.:9000"]) {
      expect(() => DEFAULT.checkUrl(url)).toThrow(OutboundError);
    }
    expect(() => DEFAULT.checkUrl("http://127.0.0.1:9000")).not.toThrow();
    expect(() => DEFAULT.checkUrl("https://s3.example.com")).not.toThrow(); // names: checked at connect time
  });
});

describe("config: network CIDRs are validated", () => {
  test("a bad CIDR is a problem naming its key; good ones load", () => {
    const load = (env: Record<string, string>) => loadConfig({ env: { SNAPDB_DATA_DIR: "/tmp/snapdb-cidr-test", ...env }, defaultConfigFile: "/nonexistent" });
    let err: unknown;
    try {
      load({ SNAPDB_NETWORK_DENY_CIDRS: "10.0.0.0/8,10.0.0.0/33", SNAPDB_NETWORK_ALLOW_CIDRS: "nonsense" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join("\n");
    expect(problems).toContain("network.denyCidrs.1");
    expect(problems).toContain("network.allowCidrs.0");
    expect(problems).not.toContain("network.denyCidrs.0");
    const { config } = load({ SNAPDB_NETWORK_DENY_CIDRS: "127.0.0.0/8,::1/128", SNAPDB_NETWORK_ALLOW_CIDRS: "::ffff:10.0.0.0/104" });
    expect(config.network).toEqual({ denyCidrs: ["127.0.0.0/8", "::1/128"], allowCidrs: ["::ffff:10.0.0.0/104"] });
    expect(load({}).config.network.denyCidrs).toEqual(["169.254.0.0/16", "fd00:ec2::254/128"]);
  });
});

describe("connection values never become options or connection strings", () => {
  test("conninfo quoting follows libpq: \\ and ' escaped inside single quotes", () => {
    expect(conninfoValue("plain")).toBe("'plain'");
    expect(conninfoValue("we'ird db")).toBe("'we\\'ird db'");
    expect(conninfoValue("a\\b")).toBe("'a\\\\b'");
    expect(conninfoValue("dbname=x host=/run/postgresql")).toBe("'dbname=x host=/run/postgresql'");
  });

  test("data source hosts are host names or IP addresses only", () => {
    for (const ok of ["db.example.com", "db_1.internal", "127.0.0.1", "::1", "[::1]", "fe80::1%eth0", "localhost."]) expect(isNetworkHost(ok)).toBe(true);
    for (const bad of ["/run/postgresql", "@abstract", "-hsomewhere", "a b", "host=x", "[db]", "a..b", "-x.com", "x/y", `${"a".repeat(64)}.com`]) {
      expect(isNetworkHost(bad)).toBe(false);
    }
  });
});
