/**
 * A pasted token is looked at before the page uses it: the dashboard only reads, so a token
 * that could also change things (write, operate, restore) has no business in a browser tab.
 * Its payload is decoded, not verified: the daemon verifies it on every request anyway; this
 * refusal only keeps a powerful token from being used (and held) by the page at all.
 */

/** The payload of a JWT, or null when `token` is not one. */
function payloadOf(token: string): Record<string, unknown> | null {
  const parts = token.split(".");
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const json = new TextDecoder().decode(Uint8Array.from(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, "=")), (c) => c.charCodeAt(0)));
    const payload = JSON.parse(json);
    return payload && typeof payload === "object" && !Array.isArray(payload) ? payload : null;
  } catch {
    return null;
  }
}

/** Scopes that only read end in `.read` (backup.read, audit.read, metrics.read). */
const isReadScope = (scope: string) => scope.endsWith(".read");

/** Why the page refuses a pasted token, or null when it may use it. */
export function pastedTokenProblem(token: string): string | null {
  const payload = payloadOf(token);
  if (!payload) return "That is not an API token (a JWT: three parts separated by dots).";
  const scopes = typeof payload.scope === "string" ? payload.scope.split(" ").filter(Boolean) : [];
  const more = scopes.filter((s) => !isReadScope(s));
  if (more.length) {
    return (
      `This token can also change things (${more.join(", ")}): the dashboard only takes a read-only token, with the scope backup.read. ` +
      "Run snapdb ui-link, or mint one with snapdb token --org ORG --scope backup.read."
    );
  }
  return null;
}
