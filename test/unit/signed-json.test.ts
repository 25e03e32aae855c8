import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { Cursors } from "../../src/http/pagination.ts";
import { SignedJson } from "../../src/lib/signed-json.ts";
import { DownloadTokens } from "../../src/storage/download-token.ts";

const key = new Uint8Array(32).map((_, i) => i);

// Made by the codecs before they shared src/lib/signed-json.ts: links and cursors that clients
// hold across an upgrade must keep working, byte for byte.
const CURSOR = "eyJsIjoiZGF0YS1zb3VyY2VzIiwibyI6Im9yZ19hIiwiayI6ImRzXzAxSjAwMDAwMDAwMDAwMDAwMDAwMDAwMDBaIn0.M7E6u_FOjQmkg-mXnrBKJA";
const LINK = "eyJ2IjoxLCJkIjoiZHN0XzEiLCJrIjoib3JnX2EvZHNfMS8yMDI2LzAxLzAxL2pvYl8xLmR1bXAuenN0LmFnZSIsImUiOjE4MDAwMDAwMDAwMDAsImYiOiLDvG7Dry5kdW1wIn0.bPAtVMhMlxQDwPk0Yq2_EQ6flyHmqqBY3aTeqzXy7Fk";
const GRANT = { destinationId: "dst_1", key: "org_a/ds_1/2026/01/01/job_1.dump.zst.age", expiresAt: 1800000000000, filename: "ünï.dump" };

describe("signed JSON tokens", () => {
  test("cursors and download links are the same bytes as before, and read back", () => {
    const cursors = new Cursors(key);
    expect(cursors.encode("data-sources", "org_a", "ds_01J0000000000000000000000Z")).toBe(CURSOR);
    expect(cursors.decode("data-sources", "org_a", CURSOR)).toBe("ds_01J0000000000000000000000Z");
    const links = new DownloadTokens(key);
    expect(links.sign(GRANT)).toBe(LINK);
    expect(links.verify(LINK, 1_700_000_000_000)).toEqual({ ok: true, grant: GRANT });
    expect(links.verify(LINK, GRANT.expiresAt)).toEqual({ ok: false, reason: "expired" });
  });

  test("a purpose's context keeps one key's tokens apart; the MAC length is the codec's", () => {
    const plain = new SignedJson(key);
    const download = new SignedJson(key, { context: "download:" });
    const short = new SignedJson(key, { macBytes: 16 });
    const value = { a: 1 };
    expect(download.verify(plain.sign(value))).toBeUndefined();
    expect(plain.verify(download.sign(value))).toBeUndefined();
    expect(short.verify(plain.sign(value))).toBeUndefined();
    expect(short.sign(value).split(".")[1]).toHaveLength(22);
    expect(plain.sign(value).split(".")[1]).toHaveLength(43);
    expect(new DownloadTokens(key).verify(CURSOR)).toEqual({ ok: false, reason: "invalid" });
  });

  test("anything but the exact signed text is refused, never thrown", () => {
    const codec = new SignedJson(key);
    const token = codec.sign({ k: "v" });
    expect(codec.verify(token)).toEqual({ k: "v" });
    const [payload, mac] = token.split(".") as [string, string];
    // The MAC's last character carries 2 spare bits: a twin spelling decodes to the same bytes.
    const last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const twin = mac.slice(0, -1) + last[last.indexOf(mac.at(-1)!) ^ 1];
    expect(Buffer.from(twin, "base64url").equals(Buffer.from(mac, "base64url"))).toBe(true);
    for (const bad of [`${payload}.${twin}`, `${payload}.${mac}.x`, `.${mac}`, `${payload}.`, payload, "", `${payload}x.${mac}`, `${payload}.${mac.slice(1)}`]) {
      expect({ bad, value: codec.verify(bad) }).toEqual({ bad, value: undefined });
    }
    // Signed bytes that are not JSON: refused, not a SyntaxError.
    const notJson = Buffer.from("{nope").toString("base64url");
    const mac2 = createHmac("sha256", key).update(notJson).digest("base64url");
    expect(codec.verify(`${notJson}.${mac2}`)).toBeUndefined();
    // Signed JSON of another shape: the codec hands it over, the cursor refuses it (400, not 500).
    const nullToken = new SignedJson(key, { macBytes: 16 }).sign(null);
    expect(() => new Cursors(key).decode("data-sources", "org_a", nullToken)).toThrow("cursor is malformed");
  });
});
