import type { Config } from "../../config/schema.ts";
import { invalidInput } from "../../lib/errors.ts";
import { normalizePrefix } from "../../storage/keys.ts";
import { checkLocalRoot } from "../../storage/local-paths.ts";
import type { DestinationSecret, LocalSettings, S3Settings } from "../../storage/registry.ts";

export interface AuthInput {
  type: "accessKey" | "assumeRole";
  accessKeyId?: string;
  secretAccessKey?: string;
  roleArn?: string;
  /** Read-only (snapdb generates it): only here to be refused with a message that says so. */
  externalId?: string;
}

export interface FieldsInput {
  name?: string;
  endpoint?: string;
  region?: string;
  bucket?: string;
  prefix?: string;
  forcePathStyle?: boolean;
  auth?: AuthInput;
  path?: string;
}

const S3_FIELDS = ["endpoint", "region", "bucket", "prefix", "forcePathStyle", "auth"] as const;
const LOCAL_FIELDS = ["path"] as const;

export const RESERVED_NAME = "managed";

/** Refuses fields that belong to the other kind, so a typo'd body never half-applies. */
export function rejectForeignFields(kind: "s3" | "local", input: FieldsInput): void {
  const foreign = kind === "s3" ? LOCAL_FIELDS : S3_FIELDS;
  for (const f of foreign) {
    if (input[f] !== undefined) throw invalidInput(`/${f}`, `${f} is not a field of a ${kind} destination`);
  }
}

export function checkName(name: string): string {
  const trimmed = name.trim();
  if (!trimmed) throw invalidInput("/name", "name must not be blank");
  if (trimmed === RESERVED_NAME) throw invalidInput("/name", `"${RESERVED_NAME}" is reserved for the managed destination`);
  return trimmed;
}

function checkEndpoint(endpoint: string, field = "endpoint"): string {
  if (endpoint === "") return "";
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw invalidInput(`/${field}`, `${field} must be an http(s) URL, or empty for AWS`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalidInput(`/${field}`, `${field} must be an http(s) URL`);
  if (url.username || url.password) throw invalidInput(`/${field}`, `${field} must not carry credentials; use auth`);
  if (url.search || url.hash) throw invalidInput(`/${field}`, `${field} must not have a query or fragment`);
  return endpoint.replace(/\/+$/, "");
}

/** An IAM role ARN in any AWS partition: `arn:aws…:iam::<12-digit account>:role/<path/>name`. */
const ROLE_ARN = /^arn:aws(?:-[a-z]+)*:iam::\d{12}:role\/(?:[\x21-\x7e]{0,510}\/)?[\w+=,.@-]{1,64}$/;

/** `*` matches any run of characters (none included); everything else is literal. */
export function matchesArnGlob(arn: string, glob: string): boolean {
  const pattern = glob
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${pattern}$`, "s").test(arn);
}

function checkRoleArn(roleArn: string | undefined, config: Config): string {
  if (!roleArn || !ROLE_ARN.test(roleArn)) {
    throw invalidInput("/auth/roleArn", "roleArn must be an IAM role ARN, e.g. arn:aws:iam::123456789012:role/snapdb");
  }
  const allowed = config.storage.allowedRoleArns;
  if (allowed.length && !allowed.some((glob) => matchesArnGlob(roleArn, glob))) {
    throw invalidInput("/auth/roleArn", `roleArn ${roleArn} is not one the operator allows (storage.allowedRoleArns)`);
  }
  return roleArn;
}

/** `secret` is null for assumeRole: it has nothing to seal (the ExternalId is snapdb's). */
export function checkAuth(auth: AuthInput, config: Config): { settings: S3Settings["auth"]; secret: DestinationSecret | null } {
  if (auth.type === "accessKey") {
    if (auth.roleArn !== undefined || auth.externalId !== undefined) {
      throw invalidInput("/auth", "accessKey auth takes accessKeyId and secretAccessKey only");
    }
    if (!auth.accessKeyId || !/^[\x21-\x7e]+$/.test(auth.accessKeyId)) throw invalidInput("/auth/accessKeyId", "accessKeyId is required");
    if (!auth.secretAccessKey) throw invalidInput("/auth/secretAccessKey", "secretAccessKey is required");
    return { settings: { type: "accessKey", accessKeyId: auth.accessKeyId }, secret: { secretAccessKey: auth.secretAccessKey } };
  }
  if (auth.accessKeyId !== undefined || auth.secretAccessKey !== undefined) {
    throw invalidInput("/auth", "assumeRole auth takes roleArn only");
  }
  if (auth.externalId !== undefined) {
    throw invalidInput("/auth/externalId", "externalId is read-only: snapdb generates it for the organisation (GET /storage-destinations/assume-role-info); leave it out");
  }
  return { settings: { type: "assumeRole", roleArn: checkRoleArn(auth.roleArn, config) }, secret: null };
}

/** The non-secret settings of an s3 destination from a full input (create) or a merged one (patch). */
export function checkS3(input: FieldsInput, previous?: S3Settings): S3Settings {
  const bucket = input.bucket ?? previous?.bucket;
  if (!bucket) throw invalidInput("/bucket", "bucket is required");
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9]$/.test(bucket)) throw invalidInput("/bucket", "bucket is not a valid bucket name");
  const endpoint = checkEndpoint(input.endpoint ?? previous?.endpoint ?? "");
  const region = input.region ?? previous?.region ?? "us-east-1";
  if (!/^[a-z0-9-]{1,64}$/.test(region)) throw invalidInput("/region", "region must look like us-east-1");
  let prefix: string;
  try {
    prefix = normalizePrefix(input.prefix ?? previous?.prefix ?? "");
  } catch {
    throw invalidInput("/prefix", "prefix segments may hold A-Z a-z 0-9 . _ - (not starting with . or -) separated by /");
  }
  const forcePathStyle = input.forcePathStyle ?? previous?.forcePathStyle ?? endpoint !== "";
  const auth = previous?.auth ?? { type: "accessKey", accessKeyId: "" };
  // Only the fields named: a `stsEndpoint` that rows of older versions hold is dropped here.
  return { endpoint, region, bucket, prefix, forcePathStyle, auth };
}

export function checkLocalPath(path: string, config: Config): LocalSettings {
  const normalized = path.length > 1 ? path.replace(/\/+$/, "") : path;
  if (!normalized.startsWith("/") || normalized.includes("\0") || normalized.split("/").some((s) => s === "." || s === "..")) {
    throw invalidInput("/path", `path ${JSON.stringify(path)} must be an absolute, normalized directory path`);
  }
  const roots = config.storage.allowedLocalRoots;
  const check = checkLocalRoot(normalized, roots);
  // Under an allowed root, but another user could swap a directory on the way (local-paths.ts).
  if (!check.ok && !check.outside) throw invalidInput("/path", check.reason);
  if (!check.ok) {
    throw invalidInput(
      "/path",
      roots.length
        ? `path ${normalized} is not under an allowed local root (${roots.join(", ")})`
        : `path ${normalized} is refused: the operator allows no local directories (storage.allowedLocalRoots is empty)`,
    );
  }
  return { path: normalized };
}

export function defaultName(kind: "s3" | "local", settings: S3Settings | LocalSettings): string {
  if (kind === "local") return (settings as LocalSettings).path;
  const s = settings as S3Settings;
  return s.prefix ? `s3://${s.bucket}/${s.prefix}` : `s3://${s.bucket}`;
}
