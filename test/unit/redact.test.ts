import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { redactSecret, redactSecrets } from "../../src/lib/redact.ts";

const TOOL_ERROR = 'pg_dump: error: connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?';

describe("redactSecret", () => {
  test("a one-letter secret never garbles the words around it", () => {
    for (const secret of ["p", "g", "e", "ump"]) expect(redactSecret(TOOL_ERROR, secret)).toBe(TOOL_ERROR);
    // …but where it stands alone it is masked ("port 1", the last "1" of the address).
    expect(redactSecret(TOOL_ERROR, "1")).toBe(TOOL_ERROR.replace("127.0.0.1", "127.0.0.***").replace("port 1 ", "port *** "));
  });

  test("a short secret standing as itself is masked", () => {
    expect(redactSecret("password p rejected", "p")).toBe("password *** rejected");
    expect(redactSecret('login "hunter2" failed', "hunter2")).toBe('login "***" failed');
    expect(redactSecret("x=hunter2", "hunter2")).toBe("x=***");
    expect(redactSecret("hunter22 is another word", "hunter2")).toBe("hunter22 is another word");
    // A secret of symbols has no word edge to respect.
    expect(redactSecret("a-!?-b", "!?")).toBe("a-***-b");
  });

  test("a long secret is masked everywhere, even inside a longer string", () => {
    const secret = "pw-9f8e7d6c5b4a";
    expect(redactSecret(`DSN user:${secret}@host and x${secret}y`, secret)).toBe("DSN user:***@host and x***y");
  });

  test("property: a secret of 8+ characters never survives, and the text around it is kept", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]{8,20}$/), fc.array(fc.stringMatching(/^[A-Z .:-]{0,20}$/), { minLength: 2, maxLength: 5 }), (secret, parts) => {
        const out = redactSecret(parts.join(secret), secret);
        expect(out.includes(secret)).toBe(false);
        expect(out).toBe(parts.join("***"));
      }),
    );
  });

  test("property: a short secret inside words leaves the text unchanged", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z]{1,7}$/), fc.array(fc.stringMatching(/^[a-z]{1,8}$/), { minLength: 2, maxLength: 5 }), (secret, words) => {
        const text = words.map((w) => `${w}${secret}${w}`).join(" ");
        expect(redactSecret(text, secret)).toBe(text);
      }),
    );
  });

  test("several secrets: the longer is masked whole first", () => {
    expect(redactSecrets("token abcdefgh12345678 and abcdefgh", ["abcdefgh", "abcdefgh12345678"])).toBe("token *** and ***");
  });
});
