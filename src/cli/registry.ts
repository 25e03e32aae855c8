import type { Command } from "./command.ts";

/**
 * Each command's module is imported only when it runs: `serve` pulls in the web framework,
 * the AWS SDK and the rest, which `token`, `ready`, `version` or the API client commands
 * have no use for.
 */
export interface CommandEntry {
  name: string;
  load: () => Promise<Command>;
}

export const COMMANDS: CommandEntry[] = [
  { name: "serve", load: async () => (await import("./serve.ts")).serveCommand },
  { name: "token", load: async () => (await import("./token.ts")).tokenCommand },
  { name: "migrate", load: async () => (await import("./migrate.ts")).migrateCommand },
  { name: "key", load: async () => (await import("./key.ts")).keyCommand },
  { name: "doctor", load: async () => (await import("./doctor.ts")).doctorCommand },
  { name: "ready", load: async () => (await import("./ready.ts")).readyCommand },
  { name: "rotate-master-key", load: async () => (await import("./rotate-master-key.ts")).rotateMasterKeyCommand },
  { name: "version", load: async () => (await import("./version.ts")).versionCommand },
  // Clients of the API: the same routes, scopes and errors as curl sees.
  { name: "sources", load: async () => (await import("./client/sources.ts")).sourcesCommand },
  { name: "policies", load: async () => (await import("./client/policies.ts")).policiesCommand },
  { name: "jobs", load: async () => (await import("./client/jobs.ts")).jobsCommand },
  { name: "restores", load: async () => (await import("./client/restores.ts")).restoresCommand },
  { name: "backup", load: async () => (await import("./client/backup.ts")).backupCommand },
  { name: "restore", load: async () => (await import("./client/restore.ts")).restoreCommand },
  { name: "verify", load: async () => (await import("./client/verify.ts")).verifyCommand },
  { name: "download", load: async () => (await import("./client/download.ts")).downloadCommand },
  { name: "ui-link", load: async () => (await import("./client/ui-link.ts")).uiLinkCommand },
  { name: "completion", load: async () => (await import("./completion.ts")).completionCommand },
];
