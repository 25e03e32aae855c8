import pkg from "../package.json" with { type: "json" };

/** The version of this build; `package.json` is the one place it is set. */
export const VERSION: string = pkg.version;
