import { afterAll, describe, expect, test } from "bun:test";
import { DefaultErrorFunction, SetErrorFunction } from "@sinclair/typebox/errors";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Elysia, t } from "elysia";
import { loadConfig } from "../../src/config/load.ts";
import { errorHandler } from "../../src/http/errors.ts";
import { silentLogger } from "../../src/lib/logger.ts";
import { tempDir } from "../helpers/tmp.ts";

/**
 * Validation answers are built from TypeBox's error kinds, not its English: with every message
 * reworded (TypeBox lets an application do that), the answers stay the same.
 */
const app = new Elysia({ normalize: false }).use(errorHandler(silentLogger)).post("/v", ({ body }) => body, {
  body: t.Object({ name: t.String(), size: t.Optional(t.Integer({ minimum: 1, maximum: 9 })) }, { additionalProperties: false }),
});
const post = async (body: unknown) =>
  (await app.handle(new Request("http://localhost/v", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }))).json() as Promise<any>;

const answers = async () => ({
  unknown: await post({ name: "a", extra: 1 }),
  missing: await post({}),
  range: await post({ name: "a", size: 12 }),
});

const dir = tempDir("snapdb-validation");

/** What loadConfig says about a config file with an unknown key. */
function configProblem(): string {
  const file = join(dir.path, "snapdb.toml");
  writeFileSync(file, "[http]\nbogus = 1\n");
  try {
    loadConfig({ env: { SNAPDB_CONFIG: file, SNAPDB_DATA_DIR: dir.path } });
    return "loaded";
  } catch (err) {
    return (err as Error).message;
  }
}

afterAll(() => {
  SetErrorFunction(DefaultErrorFunction);
  dir.cleanup();
});

describe("validation errors by kind", () => {
  test("unknown field, missing field, out of range, unknown config key: the same words whatever TypeBox's wording", async () => {
    const plain = await answers();
    const config = configProblem();
    expect(config).toContain("http.bogus");
    expect(config).toContain("unknown key");
    expect(plain.unknown).toMatchObject({ code: "INVALID_INPUT", details: [{ path: "/extra", message: "unknown field" }] });
    expect(plain.missing).toMatchObject({ code: "INVALID_INPUT", details: [{ path: "/name", message: "is required" }] });
    expect(plain.range.details[0]).toEqual({ path: "/size", message: "must be an integer from 1 to 9" });

    SetErrorFunction(() => "reworded");
    try {
      expect(await answers()).toEqual(plain);
      expect(configProblem()).toBe(config);
    } finally {
      SetErrorFunction(DefaultErrorFunction);
    }
  });
});
