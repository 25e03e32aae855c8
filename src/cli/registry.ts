import type { Command } from "./command.ts";

/**
 * Each command's module is imported only when it runs: `serve` pulls in the web framework,
 * the AWS SDK and the rest, which `token`, `ready`, `version` or the API client commands
 * have no use for.
 */
export interface CommandEntry {
  name: string;
  /** The command's own `summary`, here so `snapdb --help` lists every command without loading any (a test keeps them equal). */
  summary: string;
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  { name: "serve", summary: "run the daemon: API, scheduler and runner", load: async () => (await import("./serve.ts")).serveCommand },
  { name: "token", summary: "mint an API token with the local signing secret", load: async () => (await import("./token.ts")).tokenCommand },
  { name: "migrate", summary: "apply the store's schema migrations and exit (serve does this too)", load: async () => (await import("./migrate.ts")).migrateCommand },
  { name: "key", summary: "key export: print an org's age identity, to decrypt its backups by hand", load: async () => (await import("./key.ts")).keyCommand },
  { name: "doctor", summary: "check config, data dir, store, keys, dump tools, listen address, storage", load: async () => (await import("./doctor.ts")).doctorCommand },
  { name: "ready", summary: "wait until the daemon answers /readyz (systemd ExecStartPost)", load: async () => (await import("./ready.ts")).readyCommand },
  { name: "rotate-master-key", summary: "generate a new master key and re-encrypt every stored secret under it", load: async () => (await import("./rotate-master-key.ts")).rotateMasterKeyCommand },
  { name: "store", summary: "store copy --to postgres://…: copy the embedded store into PostgreSQL (fleet mode)", load: async () => (await import("./store-copy.ts")).storeCopyCommand },
  { name: "wal-fetch", summary: "restore_command of a point-in-time restore: one archived WAL file, decrypted, to a path", load: async () => (await import("./wal-fetch.ts")).walFetchCommand },
  { name: "version", summary: "print the version", load: async () => (await import("./version.ts")).versionCommand },
  // Clients of the API: the same routes, scopes and errors as curl sees.
  { name: "sources", summary: "list data sources, or show one (--json: the API's JSON)", load: async () => (await import("./client/sources.ts")).sourcesCommand },
  { name: "policies", summary: "list backup policies, or show one (--json: the API's JSON)", load: async () => (await import("./client/policies.ts")).policiesCommand },
  { name: "jobs", summary: "list backup jobs, or show one (--json: the API's JSON)", load: async () => (await import("./client/jobs.ts")).jobsCommand },
  { name: "restores", summary: "list restores, or show one (--json: the API's JSON)", load: async () => (await import("./client/restores.ts")).restoresCommand },
  { name: "backup", summary: "back up a data source now (--wait: follow it with a progress bar)", load: async () => (await import("./client/backup.ts")).backupCommand },
  { name: "restore", summary: "restore a backup job's file (--wait: follow it with a progress bar)", load: async () => (await import("./client/restore.ts")).restoreCommand },
  { name: "verify", summary: "re-read a backup's stored file: size, sha256, decrypts and decompresses", load: async () => (await import("./client/verify.ts")).verifyCommand },
  { name: "download", summary: "download a backup's stored file and check its sha256", load: async () => (await import("./client/download.ts")).downloadCommand },
  { name: "ui-link", summary: "print a one-time login link to the dashboard (/ui/)", load: async () => (await import("./client/ui-link.ts")).uiLinkCommand },
  { name: "completion", summary: "print a shell completion script: bash, zsh or fish", load: async () => (await import("./completion.ts")).completionCommand },
];
