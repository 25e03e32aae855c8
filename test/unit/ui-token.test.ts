/**
 * The dashboard's check of a pasted token (src/ui/token.ts), on tokens minted the way
 * `snapdb token` mints them: read-only scopes pass, any other scope is refused by name, and
 * what is not a JWT is refused too.
 */
import { expect, test } from "bun:test";
import { mintToken } from "../../src/crypto/jwt-mint.ts";
import { SCOPES } from "../../src/http/auth.ts";
import { pastedTokenProblem } from "../../src/ui/token.ts";

const mint = (scopes: string[], orgId = "acme ü") => mintToken({ secret: new Uint8Array(32).fill(7), orgId, sub: "op", scopes, ttlSeconds: 3600, audience: "snapdb", orgClaim: "org_id" });

test("read-only scopes pass", async () => {
  expect(pastedTokenProblem(await mint(["backup.read"]))).toBeNull();
  expect(pastedTokenProblem(await mint(["backup.read", "audit.read"]))).toBeNull();
  // Non-ASCII claims (base64url of UTF-8) decode too.
  expect(pastedTokenProblem(await mint(["backup.read"], "örg_ø/日本"))).toBeNull();
});

test("a token with any scope that can change things is refused, naming those scopes", async () => {
  const all = pastedTokenProblem(await mint([...SCOPES]));
  expect(all).toContain("This token can also change things (backup.write, backup.operate, backup.restore, notify.write)");
  expect(all).toContain("scope backup.read");
  for (const scope of SCOPES.filter((s) => !s.endsWith(".read"))) {
    expect(pastedTokenProblem(await mint(["backup.read", scope]))).toContain(`(${scope})`);
  }
});

test("what is not a JWT is refused", () => {
  for (const junk of ["not-a-jwt", "a.b", "a.%%%.c", `x.${btoa("[1,2]")}.y`, `x.${btoa("null")}.y`]) {
    expect(pastedTokenProblem(junk)).toStartWith("That is not an API token");
  }
});
