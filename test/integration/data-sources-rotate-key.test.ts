import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, statSync } from "node:fs";
import { eq } from "drizzle-orm";
import { prepareRotation, reencryptAll, rotateMasterKey, rotateMasterKeyCommand } from "../../src/cli/rotate-master-key.ts";
import { readKeyFile } from "../../src/crypto/key-files.ts";
import { keyIdOf, SecretBox } from "../../src/crypto/secrets.ts";
import { recipientOf } from "../../src/crypto/age.ts";
import { ensureOrgRecipient, orgIdentity } from "../../src/crypto/org-keys.ts";
import { dataSources, storageDestinations } from "../../src/db/schema.ts";
import { newId } from "../../src/lib/ids.ts";
import { credentialsAad } from "../../src/modules/data-sources/credentials.ts";
import { secretAad } from "../../src/storage/registry.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";

let h: Harness;
let token: string;
const PASSWORD = "rotate-me-" + crypto.randomUUID();
const S3_SECRET = "s3-secret-" + crypto.randomUUID();

beforeAll(async () => {
  h = await createHarness();
  token = await h.token("org_r");
});
afterAll(() => h.close());

async function seed() {
  const ds = await h.call("POST", "/data-sources", { token, body: { name: `r-${crypto.randomUUID().slice(0, 6)}`, engine: "postgres", host: "h", database: "d" } });
  await h.call("PUT", `/data-sources/${ds.body.id}/credentials`, { token, body: { username: "u", password: PASSWORD } });
  const dst = newId("dst");
  const sealed = new SecretBox(readKeyFile(h.config.masterKeyFile)).seal(JSON.stringify({ secretAccessKey: S3_SECRET }), secretAad(dst));
  const now = Date.now();
  await h.store.db
    .insert(storageDestinations)
    .values({ id: dst, orgId: "org_r", kind: "s3", name: `d-${dst}`, settings: {}, secretCiphertext: sealed.ciphertext, secretKeyId: sealed.keyId, createdAt: now, updatedAt: now });
  return { dsId: ds.body.id as string, dstId: dst };
}

/** Opens both secrets with ONLY the key now in the key file. */
async function openWithKeyFile(dsId: string, dstId: string) {
  const key = readKeyFile(h.config.masterKeyFile);
  const box = new SecretBox(key);
  const ds = (await h.store.db.select().from(dataSources).where(eq(dataSources.id, dsId)))[0]!;
  const dst = (await h.store.db.select().from(storageDestinations).where(eq(storageDestinations.id, dstId)))[0]!;
  expect(ds.credentialsKeyId).toBe(keyIdOf(key));
  expect(dst.secretKeyId).toBe(keyIdOf(key));
  return {
    password: box.open({ ciphertext: ds.credentialsCiphertext!, keyId: ds.credentialsKeyId! }, credentialsAad(dsId)),
    s3: JSON.parse(box.open({ ciphertext: dst.secretCiphertext!, keyId: dst.secretKeyId! }, secretAad(dstId))).secretAccessKey,
  };
}

describe("snapdb rotate-master-key", () => {
  test("round trip through the CLI command: secrets open with the new key, the old key is kept 0600", async () => {
    const { dsId, dstId } = await seed();
    const oldKey = readKeyFile(h.config.masterKeyFile);
    const recipient = await ensureOrgRecipient(h.store.db, new SecretBox(oldKey), "org_r");
    const code = await rotateMasterKeyCommand.run(h.cliFlags, []);
    expect(code).toBe(0);
    const newKey = readKeyFile(h.config.masterKeyFile);
    expect(keyIdOf(newKey)).not.toBe(keyIdOf(oldKey));
    expect(await openWithKeyFile(dsId, dstId)).toEqual({ password: PASSWORD, s3: S3_SECRET });
    // The org's age identity (what decrypts its backups) moves to the new key too.
    const identity = (await orgIdentity(h.store.db, new SecretBox(newKey), "org_r"))!;
    expect(await recipientOf(identity)).toBe(recipient);
    const oldCopy = `${h.config.masterKeyFile}.old-${keyIdOf(oldKey)}`;
    expect(Buffer.from(readKeyFile(oldCopy)).equals(Buffer.from(oldKey))).toBe(true);
    expect(statSync(oldCopy).mode & 0o777).toBe(0o600);
    expect(statSync(h.config.masterKeyFile).mode & 0o777).toBe(0o600);
    expect(readdirSync(h.dataDir).filter((n) => n.includes(".new-"))).toEqual([]);
  });

  test("a crash after the commit and before the key swap is finished by running it again", async () => {
    const { dsId, dstId } = await seed();
    const keyFile = h.config.masterKeyFile;
    const before = readKeyFile(keyFile);
    // Steps 1–3 of a rotation, then "crash" before the rename.
    const p = prepareRotation(keyFile);
    // h.master: the harness app still runs on the first key (like a daemon left running), so
    // the credentials it just sealed are under that key; the command finds it as `.old-*`.
    await reencryptAll(h.store, new SecretBox(p.newKey, [p.oldKey, h.master]));
    expect(existsSync(p.pendingFile)).toBe(true);
    expect(Buffer.from(readKeyFile(keyFile)).equals(Buffer.from(before))).toBe(true);
    const again = await rotateMasterKey(keyFile, h.store);
    expect(again).toMatchObject({ resumed: true, newKeyId: keyIdOf(p.newKey), dataSources: 0, destinations: 0, orgKeys: 0 });
    expect(keyIdOf(readKeyFile(keyFile))).toBe(keyIdOf(p.newKey));
    expect(await openWithKeyFile(dsId, dstId)).toEqual({ password: PASSWORD, s3: S3_SECRET });
  });

  test("a crash before the commit leaves the store on the old key; the re-run adopts the pending key", async () => {
    const { dsId, dstId } = await seed();
    const keyFile = h.config.masterKeyFile;
    const p = prepareRotation(keyFile); // "crash" right after writing the pending key
    const r = await rotateMasterKey(keyFile, h.store);
    expect(r.resumed).toBe(true);
    expect(r.newKeyId).toBe(keyIdOf(p.newKey));
    expect(r.dataSources).toBeGreaterThan(0);
    expect(await openWithKeyFile(dsId, dstId)).toEqual({ password: PASSWORD, s3: S3_SECRET });
  });

  test("a secret that does not open aborts the rotation with nothing changed", async () => {
    const { dsId } = await seed();
    const keyFile = h.config.masterKeyFile;
    const before = readKeyFile(keyFile);
    const snapshot = (await h.store.db.select().from(dataSources).where(eq(dataSources.id, dsId)))[0]!;
    const bad = newId("ds");
    const now = Date.now();
    await h.store.db.insert(dataSources).values({
      id: bad,
      orgId: "org_r",
      name: `bad-${bad}`,
      engine: "sqlite",
      path: "/x.db",
      credentialsUsername: "u",
      credentialsCiphertext: snapshot.credentialsCiphertext,
      credentialsKeyId: snapshot.credentialsKeyId,
      credentialsUpdatedAt: now,
      createdAt: now,
      updatedAt: now,
    });
    expect(async () => rotateMasterKey(keyFile, h.store)).toThrow(/does not open/);
    expect(Buffer.from(readKeyFile(keyFile)).equals(Buffer.from(before))).toBe(true);
    expect((await h.store.db.select().from(dataSources).where(eq(dataSources.id, dsId)))[0]!.credentialsCiphertext).toBe(snapshot.credentialsCiphertext);
    expect(readdirSync(h.dataDir).filter((n) => n.includes(".new-"))).toEqual([]);
    await h.store.db.delete(dataSources).where(eq(dataSources.id, bad));
  });
});

describe("a daemon across a rotation", () => {
  test("loads the rotated keys beside the master key, so every secret opens mid-rotation", async () => {
    const { secretBoxFor } = await import("../../src/cli/runtime.ts");
    const { dsId } = await seed();
    const before = readKeyFile(h.config.masterKeyFile);
    const p = prepareRotation(h.config.masterKeyFile);
    // Crash between the commit and the key swap: secrets are under the pending key only.
    await reencryptAll(h.store, new SecretBox(p.newKey, [before, h.master]));
    const { secrets } = secretBoxFor(h.config);
    const row = (await h.store.db.select().from(dataSources).where(eq(dataSources.id, dsId)))[0]!;
    expect(row.credentialsKeyId).toBe(keyIdOf(p.newKey));
    expect(secrets.open({ ciphertext: row.credentialsCiphertext!, keyId: row.credentialsKeyId! }, credentialsAad(dsId))).toBe(PASSWORD);
    await rotateMasterKey(h.config.masterKeyFile, h.store); // the re-run finishes it
  });
});
