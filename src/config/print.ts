import { stringify } from "smol-toml";
import { maskUrl } from "../lib/mask-url.ts";
import { SECRET_PATHS, SECRET_URL_PATHS, type Config } from "./schema.ts";
import { getPath, setPath, type Tree } from "./tree.ts";

export const MASK = "********";

/** The effective config as TOML, secrets masked (an unset secret stays empty so you can tell). */
export function printableConfig(config: Config): string {
  const copy = structuredClone(config) as unknown as Tree;
  for (const path of SECRET_PATHS) {
    const value = getPath(copy, path);
    if (typeof value === "string" && value !== "") setPath(copy, path, MASK);
  }
  // The store URL is shown (which server, which database) with its password masked.
  for (const path of SECRET_URL_PATHS) {
    const value = getPath(copy, path);
    if (typeof value === "string" && value !== "") setPath(copy, path, maskUrl(value, MASK));
  }
  return stringify(copy);
}
