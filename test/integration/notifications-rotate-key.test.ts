import { afterAll, beforeAll, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { rotateMasterKey } from "../../src/cli/rotate-master-key.ts";
import { readKeyFile } from "../../src/crypto/key-files.ts";
import { keyIdOf, SecretBox } from "../../src/crypto/secrets.ts";
import { notificationChannels } from "../../src/db/schema.ts";
import { openChannelSecret } from "../../src/notify/channel-secret.ts";
import { createHarness, type Harness } from "../helpers/harness.ts";
import { createChannel } from "../helpers/notify-flow.ts";

/** `snapdb rotate-master-key` re-seals notification channel secrets with the rest. */
let h: Harness;
beforeAll(async () => {
  h = await createHarness();
});
afterAll(() => h.close());

test("channel secrets open with only the new key after a rotation", async () => {
  const token = await h.token("org_rot");
  const hook = await createChannel(h, token, "webhook", { url: "https://example.com/h", secret: "whsec-rotate-0123456789" });
  const ntfy = await createChannel(h, token, "ntfy", { url: "https://ntfy.sh", topic: "t", token: "tk_rotate" });
  const oldKeyId = keyIdOf(readKeyFile(h.config.masterKeyFile));
  const result = await rotateMasterKey(h.config.masterKeyFile, h.store);
  expect(result.notificationChannels).toBe(2);
  const key = readKeyFile(h.config.masterKeyFile);
  expect(keyIdOf(key)).not.toBe(oldKeyId);
  const onlyNew = new SecretBox(key);
  const row = async (id: string) => (await h.store.db.select().from(notificationChannels).where(eq(notificationChannels.id, id)))[0]!;
  expect((await row(hook.id)).secretKeyId).toBe(keyIdOf(key));
  expect(openChannelSecret(onlyNew, await row(hook.id))).toEqual({ secret: "whsec-rotate-0123456789" });
  expect(openChannelSecret(onlyNew, await row(ntfy.id))).toEqual({ token: "tk_rotate" });
  // Bound to its row: the ciphertext of one channel does not open as another's.
  expect(async () => openChannelSecret(onlyNew, { ...(await row(hook.id)), id: ntfy.id })).toThrow();
});
