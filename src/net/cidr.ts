import { isIP } from "node:net";

/**
 * IP addresses and CIDR ranges as numbers, for the outbound policy. IPv4-mapped IPv6
 * addresses (`::ffff:169.254.169.254`) are IPv4 here: a socket to one reaches the IPv4
 * host, so it must match the IPv4 ranges (and a range written in mapped form is an IPv4
 * range).
 */
export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

export interface Cidr {
  family: 4 | 6;
  /** The network, host bits cleared. */
  network: bigint;
  prefix: number;
  /** As written in the configuration. */
  text: string;
}

const BITS = { 4: 32, 6: 128 } as const;

function ipv4Value(text: string): bigint {
  return text.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function ipv6Value(text: string): bigint {
  // A dotted IPv4 tail (`::ffff:1.2.3.4`) becomes its two hex groups.
  let body = text;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(body);
  if (dotted) {
    const v = ipv4Value(dotted[1]!);
    body = `${body.slice(0, dotted.index)}${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`;
  }
  const [head, tail] = body.includes("::") ? body.split("::") : [body, null];
  const headGroups = head ? head.split(":") : [];
  const tailGroups = tail ? tail.split(":") : [];
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === null ? headGroups : [...headGroups, ...Array(missing).fill("0"), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || "0", 16)), 0n);
}

/** An IP literal (brackets and an IPv6 zone id are ignored), or null. */
export function parseIp(text: string): IpAddress | null {
  let bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  bare = bare.replace(/%[A-Za-z0-9_.-]+$/, "");
  const family = isIP(bare);
  if (family === 4) return { family: 4, value: ipv4Value(bare) };
  if (family !== 6) return null;
  const value = ipv6Value(bare.toLowerCase());
  if (value >> 32n === 0xffffn) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** `10.0.0.0/8`, `fd00::/8`, `::ffff:169.254.0.0/112`, or a bare address (one host); null if malformed. */
export function parseCidr(text: string): Cidr | null {
  const trimmed = text.trim();
  const slash = trimmed.indexOf("/");
  const addressText = slash === -1 ? trimmed : trimmed.slice(0, slash);
  if (addressText.includes("%") || addressText.startsWith("[")) return null;
  const prefixText = slash === -1 ? null : trimmed.slice(slash + 1);
  if (prefixText !== null && !/^\d{1,3}$/.test(prefixText)) return null;
  const written = isIP(addressText);
  if (written === 0) return null;
  const address = parseIp(addressText)!;
  let prefix = prefixText === null ? BITS[written as 4 | 6] : Number(prefixText);
  if (prefix > BITS[written as 4 | 6]) return null;
  if (written === 6 && address.family === 4) {
    // A mapped range: only its IPv4 part counts.
    if (prefix < 96) return null;
    prefix -= 96;
  }
  const width = BITS[address.family];
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(width - prefix);
  return { family: address.family, network: address.value & mask, prefix, text: trimmed };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  const shift = BigInt(BITS[ip.family] - cidr.prefix);
  return ip.value >> shift === cidr.network >> shift;
}

/** `0.0.0.0` and `::` are "this host": connecting to them reaches the loopback interface. */
export function loopbackAlias(ip: IpAddress): IpAddress | null {
  if (ip.family === 4 && ip.value >> 24n === 0n) return { family: 4, value: 0x7f000001n };
  if (ip.family === 6 && ip.value === 0n) return { family: 6, value: 1n };
  return null;
}
