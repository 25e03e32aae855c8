import { join } from "node:path";

/** Embedded defaults: a daemon with no config file, no env and no flags runs on these. */
export const DEFAULT_CONFIG_FILE = "/etc/snapdb/snapdb.toml";
export const DEFAULT_LISTEN = "127.0.0.1:8484";
export const DEFAULT_DATA_DIR = "./data";

export function defaultsFor(dataDir: string, managedType: unknown): Record<string, unknown> {
  return {
    listen: DEFAULT_LISTEN,
    dataDir,
    masterKeyFile: join(dataDir, "master.key"),
    log: { level: "info" },
    auth: {
      audience: "snapdb",
      issuer: "",
      orgClaim: "org_id",
      jwtSecret: "",
      jwtSecretFile: join(dataDir, "jwt-secret"),
      publicKeyFile: "",
      jwksUrl: "",
      maxTokenLifetimeSeconds: 30 * 86400,
    },
    http: { bodyLimitBytes: 1024 * 1024, metricsPublic: true, publicUrl: "", idleTimeoutSeconds: 30 },
    managedStorage:
      managedType === "s3"
        ? {
            type: "s3",
            endpoint: "",
            prefix: "snapdb",
            forcePathStyle: false,
            accessKeyId: "",
            secretAccessKey: "",
          }
        : { type: "local", path: join(dataDir, "managed") },
    storage: { allowedLocalRoots: [], stsEndpoint: "", allowedRoleArns: [], allowedRestoreRoots: [] },
    sources: { allowedSqliteRoots: [] },
    // Link-local addresses hold the cloud metadata services (instance credentials).
    network: { denyCidrs: ["169.254.0.0/16", "fd00:ec2::254/128"], allowCidrs: [] },
    runner: {
      maxConcurrent: 2,
      retryBaseSeconds: 30,
      shutdownGraceSeconds: 60,
      maxConcurrentPerOrg: 1,
      maxTimeoutSeconds: 86400,
      restoreTimeoutSeconds: 86400,
      partsConcurrency: 1,
      leaseSeconds: 30,
    },
    store: { url: "" },
    node: { labels: {} },
    scheduler: { catchUp: "one" },
    notify: {
      staleCheckSeconds: 60,
      retryBaseSeconds: 10,
      smtp: { host: "", port: 587, secure: false, requireTLS: false, username: "", password: "", from: "" },
    },
  };
}
