import type { STSClient } from "@aws-sdk/client-sts";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@aws-sdk/types";
import { StorageError } from "./errors.ts";

export interface AssumeRoleOptions {
  roleArn: string;
  /** snapdb's ExternalId of the org (see external-id.ts), or how to look it up when STS is asked. */
  externalId: string | (() => Promise<string>);
  region: string;
  /**
   * The STS endpoint: the operator's `storage.stsEndpoint`, empty for AWS STS. Never a
   * tenant's endpoint: the request is signed with `baseCredentials`, by default the daemon's
   * own identity, which must reach no host a tenant picked.
   */
  endpoint?: string;
  /** Who asks for the role: the daemon's own identity (the default provider chain) when left out. */
  baseCredentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  sessionName?: string;
  durationSeconds?: number;
}

/** Credentials are refreshed this long before they expire, so a request never carries a dying one. */
export const REFRESH_MARGIN_MS = 5 * 60 * 1000;

/**
 * A credential provider that assumes a role with an ExternalId (the confused-deputy guard
 * of cross-account access) and caches the temporary credentials until shortly before they
 * expire; concurrent callers share one STS request.
 */
export function assumeRoleProvider(options: AssumeRoleOptions, now: () => number = Date.now): AwsCredentialIdentityProvider {
  // The STS client (and the SDK) are loaded at the first credentials request, not at start.
  let sts: Promise<{ client: STSClient; AssumeRoleCommand: typeof import("@aws-sdk/client-sts").AssumeRoleCommand }> | null = null;
  const stsClient = () =>
    (sts ??= import("@aws-sdk/client-sts").then(({ STSClient, AssumeRoleCommand }) => ({
      client: new STSClient({
        region: options.region,
        endpoint: options.endpoint || undefined,
        credentials: options.baseCredentials,
        maxAttempts: 2,
      }),
      AssumeRoleCommand,
    })));
  let cached: AwsCredentialIdentity | null = null;
  let inFlight: Promise<AwsCredentialIdentity> | null = null;

  const fetchCredentials = async (): Promise<AwsCredentialIdentity> => {
    try {
      const externalId = typeof options.externalId === "string" ? options.externalId : await options.externalId();
      const { client, AssumeRoleCommand } = await stsClient();
      const out = await client.send(
        new AssumeRoleCommand({
          RoleArn: options.roleArn,
          ExternalId: externalId,
          RoleSessionName: options.sessionName ?? "snapdb",
          DurationSeconds: options.durationSeconds ?? 3600,
        }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error("STS answered without credentials");
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
      };
    } catch (err) {
      const name = (err as { name?: string }).name ?? "error";
      throw new StorageError("ASSUME_ROLE_FAILED", `could not assume role ${options.roleArn} (${name})`, { cause: err });
    }
  };

  return async () => {
    if (cached && (!cached.expiration || cached.expiration.getTime() - REFRESH_MARGIN_MS > now())) return cached;
    inFlight ??= fetchCredentials().finally(() => {
      inFlight = null;
    });
    cached = await inFlight;
    return cached;
  };
}
