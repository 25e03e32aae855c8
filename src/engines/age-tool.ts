import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encryptStream, newAgeIdentity } from "../crypto/age.ts";
import { readAll } from "../lib/streams.ts";
import { runTool } from "./process.ts";

/** The private directory of one probe (removed at once; at start, if a kill left one). */
export const AGE_PROBE_PREFIX = "age-probe-";

const PROBE = new TextEncoder().encode("snapdb: does this age decrypt?");
const trusted = new Set<string>();

/**
 * Whether this `age` decrypts the way a restore runs it (`age --decrypt -i - FILE`: the
 * identity on stdin, the file named): a few bytes encrypted in-process (typage, the
 * reference) to a throwaway identity, decrypted by the tool. An age too old for `-i -`, or
 * not age at all, leaves restores to the daemon. Only a success is remembered.
 */
export async function ageDecrypts(age: string, toolPath: string, scratchDir: string): Promise<boolean> {
  if (trusted.has(age)) return true;
  let dir: string | null = null;
  try {
    const { identity, recipient } = await newAgeIdentity();
    const sealed = await readAll(await encryptStream(new Blob([PROBE]).stream(), [recipient]));
    mkdirSync(scratchDir, { recursive: true, mode: 0o700 });
    dir = mkdtempSync(join(scratchDir, AGE_PROBE_PREFIX));
    const file = join(dir, "probe.age");
    writeFileSync(file, sealed, { mode: 0o600 });
    const run = await runTool([age, "--decrypt", "-i", "-", file], { toolPath, timeoutMs: 10_000, stdin: new TextEncoder().encode(`${identity}\n`) });
    if (run.exitCode !== 0 || !run.stdoutBytes.equals(PROBE)) return false;
    trusted.add(age);
    return true;
  } catch {
    return false;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
