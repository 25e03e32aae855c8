import { generateKeyPairSync } from "node:crypto";
import { SignJWT, UnsecuredJWT } from "jose";
import { SCOPES } from "../../src/http/auth.ts";
import type { Harness } from "./harness.ts";

const now = () => Math.floor(Date.now() / 1000);
const otherSecret = new TextEncoder().encode("a-different-secret-of-at-least-32-bytes!!");
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });

/** Tokens that must each be refused with 401, by name. */
export async function badTokens(h: Harness, org = "org_a"): Promise<Record<string, string>> {
  const claims = { org_id: org, scope: SCOPES.join(" ") };
  const signed = (alter: (j: SignJWT) => SignJWT, key: Uint8Array = h.secret) => alter(new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("mallory")).sign(key);
  const valid = (j: SignJWT) => j.setAudience(h.config.auth.audience).setExpirationTime(now() + 600);
  return {
    garbage: "not-a-jwt",
    "bad signature": await signed(valid, otherSecret),
    "alg none": new UnsecuredJWT(claims)
      .setSubject("mallory")
      .setAudience(h.config.auth.audience)
      .setExpirationTime(now() + 600)
      .encode(),
    "RS256 instead of HS256": await valid(new SignJWT(claims).setProtectedHeader({ alg: "RS256" }).setSubject("mallory")).sign(rsa.privateKey),
    "wrong audience": await signed((j) => j.setAudience("someone-else").setExpirationTime(now() + 600)),
    expired: await signed((j) => j.setAudience(h.config.auth.audience).setExpirationTime(now() - 60)),
    "not yet valid": await signed((j) => valid(j).setNotBefore(now() + 600)),
    "no exp": await signed((j) => j.setAudience(h.config.auth.audience)),
    "lifetime of a century": await signed((j) =>
      j
        .setAudience(h.config.auth.audience)
        .setIssuedAt()
        .setExpirationTime(now() + 100 * 365 * 86400),
    ),
    "no org": await valid(new SignJWT({ scope: SCOPES.join(" ") }).setProtectedHeader({ alg: "HS256" }).setSubject("mallory")).sign(h.secret),
    "no sub": await valid(new SignJWT(claims).setProtectedHeader({ alg: "HS256" })).sign(h.secret),
  };
}
