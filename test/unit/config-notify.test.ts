import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { MASK, printableConfig } from "../../src/config/print.ts";
import { tempDir } from "../helpers/tmp.ts";

/** The notification keys: notify.staleCheckSeconds, notify.retryBaseSeconds, notify.smtp.*. */
const dir = tempDir("snapdb-config-notify");
afterAll(() => dir.cleanup());
const NO_FILE = { defaultConfigFile: join(dir.path, "absent.toml") };

const problems = (env: Record<string, string>) => {
  try {
    loadConfig({ env, ...NO_FILE });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

test("defaults: checks every 60 s, retries from 10 s, no SMTP relay", () => {
  const { config } = loadConfig({ env: {}, ...NO_FILE });
  expect(config.notify).toEqual({
    staleCheckSeconds: 60,
    retryBaseSeconds: 10,
    smtp: { host: "", port: 587, secure: false, requireTLS: false, username: "", password: "", from: "" },
  });
});

test("SNAPDB_SMTP_* set notify.smtp.*; the password is masked in --print-config", () => {
  const { config } = loadConfig({
    env: {
      SNAPDB_SMTP_HOST: "mail.example.com",
      SNAPDB_SMTP_PORT: "465",
      SNAPDB_SMTP_SECURE: "true",
      SNAPDB_SMTP_REQUIRE_TLS: "true",
      SNAPDB_SMTP_USERNAME: "relay",
      SNAPDB_SMTP_PASSWORD: "relay-password-xyz",
      SNAPDB_SMTP_FROM: "snapdb <backups@example.com>",
      SNAPDB_NOTIFY_STALE_CHECK_SECONDS: "5",
      SNAPDB_NOTIFY_RETRY_BASE_SECONDS: "2",
    },
    ...NO_FILE,
  });
  expect(config.notify).toEqual({
    staleCheckSeconds: 5,
    retryBaseSeconds: 2,
    smtp: { host: "mail.example.com", port: 465, secure: true, requireTLS: true, username: "relay", password: "relay-password-xyz", from: "snapdb <backups@example.com>" },
  });
  const text = printableConfig(config);
  expect(text).not.toContain("relay-password-xyz");
  expect(text).toContain(`password = "${MASK}"`);
});

test("bad values are refused with their key and origin", () => {
  expect(problems({ SNAPDB_SMTP_PORT: "0" })[0]).toContain("notify.smtp.port (from env SNAPDB_SMTP_PORT)");
  expect(problems({ SNAPDB_SMTP_FROM: "not an address" })).toEqual(["notify.smtp.from (from env SNAPDB_SMTP_FROM): must be an e-mail address, e.g. snapdb@example.com"]);
  expect(problems({ SNAPDB_SMTP_PASSWORD: "pw" })).toEqual(["notify.smtp.username: is required when notify.smtp.password is set"]);
  expect(problems({ SNAPDB_NOTIFY_STALE_CHECK_SECONDS: "0" })[0]).toContain("notify.staleCheckSeconds");
});
