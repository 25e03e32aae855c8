import { describe, expect, test } from "bun:test";
import { S3ServiceException } from "@aws-sdk/client-s3";
import { createLogger } from "../../src/lib/logger.ts";
import { classifyS3Error } from "../../src/storage/errors.ts";

function capture() {
  const lines: string[] = [];
  return { logger: createLogger("debug", { service: "t" }, (line) => lines.push(line)), lines };
}

const ACCESS_KEY_ID = "AKIAEXAMPLEKEYID1234";
const STRING_TO_SIGN = "AWS4-HMAC-SHA256\n20260101T000000Z\nsecret-scope";

/** An S3 error as the SDK's deserializer builds it: the response's XML fields become properties. */
function signatureMismatch(): S3ServiceException {
  const err = new S3ServiceException({
    name: "SignatureDoesNotMatch",
    $fault: "client",
    $metadata: { httpStatusCode: 403, requestId: "req-1" },
    message: "The request signature we calculated does not match the signature you provided.",
  });
  return Object.assign(err, { Code: "SignatureDoesNotMatch", AWSAccessKeyId: ACCESS_KEY_ID, StringToSign: STRING_TO_SIGN, SignatureProvided: "abc123" });
}

describe("logger: errors", () => {
  test("a StorageError keeps its code and the SDK error inside it, and nothing else of that error", () => {
    const { logger, lines } = capture();
    const storageError = classifyS3Error(signatureMismatch(), "put backup");
    logger.error("upload failed", { error: storageError });
    const record = JSON.parse(lines[0]!);
    expect(record.error).toMatchObject({
      name: "StorageError",
      code: "ACCESS_DENIED",
      message: "put backup: access denied (SignatureDoesNotMatch)",
      cause: { name: "SignatureDoesNotMatch", message: expect.stringContaining("signature we calculated"), httpStatus: 403 },
    });
    expect(record.error.stack).toContain("StorageError");
    expect(record.error.cause.stack).toBeUndefined();
    expect(lines[0]).not.toContain(ACCESS_KEY_ID);
    expect(lines[0]).not.toContain("secret-scope");
    expect(lines[0]).not.toContain("abc123");
    expect(Object.keys(record.error.cause).sort()).toEqual(["httpStatus", "message", "name"]);
  });

  test("a socket error's code under two wrappers; nested errors in fields are serialized too", () => {
    const { logger, lines } = capture();
    const socket = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:9"), { code: "ECONNREFUSED", errno: -111, address: "127.0.0.1" });
    const sdk = new Error("request failed", { cause: socket });
    logger.warn("retrying", { attempt: 2, last: { error: classifyS3Error(sdk, "list") } });
    const record = JSON.parse(lines[0]!);
    expect(record.attempt).toBe(2);
    expect(record.last.error).toMatchObject({
      code: "STORAGE_UNREACHABLE",
      cause: { name: "Error", message: "request failed", cause: { message: "connect ECONNREFUSED 127.0.0.1:9", code: "ECONNREFUSED" } },
    });
    expect(record.last.error.cause.cause.errno).toBeUndefined();
  });

  test("the cause chain is depth-limited (a cycle ends), non-Error causes keep only name, message and code", () => {
    const { logger, lines } = capture();
    const loop: Error & { cause?: unknown } = new Error("again");
    loop.cause = loop;
    logger.error("loop", { error: loop });
    let link = JSON.parse(lines[0]!).error;
    let depth = 0;
    while (link.cause && !link.cause.truncated) {
      link = link.cause;
      depth++;
    }
    expect(depth).toBe(4);
    expect(link.cause).toEqual({ truncated: true });

    logger.error("odd causes", {
      a: new Error("a", { cause: { message: "plain object", code: 7, password: "hunter2" } }),
      b: new Error("b", { cause: "just text" }),
      c: new Error("c", { cause: { token: "hunter2" } }),
    });
    const odd = JSON.parse(lines[1]!);
    expect(odd.a.cause).toEqual({ message: "plain object", code: 7 });
    expect(odd.b.cause).toEqual({ message: "just text" });
    expect(odd.c.cause).toEqual({ type: "object" });
    expect(lines[1]).not.toContain("hunter2");
  });

  test("long messages are clipped; plain fields and levels are as before", () => {
    const { logger, lines } = capture();
    logger.debug("big", { error: new Error("x".repeat(10_000)), n: 1, s: "v", list: [1, 2] });
    const record = JSON.parse(lines[0]!);
    expect(record.error.message.length).toBeLessThan(2100);
    expect(record).toMatchObject({ level: "debug", msg: "big", service: "t", n: 1, s: "v", list: [1, 2] });
    const quiet = createLogger("warn", {}, (line) => lines.push(line));
    quiet.info("hidden");
    expect(lines).toHaveLength(1);
  });
});
