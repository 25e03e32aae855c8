/**
 * The OpenAPI tags, in the order a user meets the resources (a data source, a policy for
 * it, attaching one to the other, the jobs that follow, where they are stored, getting
 * data back, who did what, running the daemon). One naming style: lower-case words.
 */
export const TAGS = {
  dataSources: { name: "data sources", description: "The databases to back up, their write-only credentials and a real connection check." },
  policies: { name: "backup policies", description: "Reusable schedule, retention, destination, compression and encryption." },
  attachments: { name: "attachments", description: "A policy on a data source: what the scheduler runs." },
  jobs: { name: "backup jobs", description: "Runs of a backup: run-now, progress, cancel, verify, download links, file deletion." },
  downloads: { name: "downloads", description: "Signed, expiring links to backup files of local-disk destinations." },
  destinations: { name: "storage destinations", description: "Where backups are stored: the managed destination, S3 buckets, local directories." },
  restores: { name: "restores", description: "Streaming a backup back into a database." },
  restorePlans: { name: "restore plans", description: "Scheduled restore drills that prove the newest backup restores, and scheduled refreshes (production into staging)." },
  notifications: {
    name: "notifications",
    description: "Channels (webhook, Slack, Discord, Teams, ntfy, e-mail), the rules that route events to them, and the delivery log.",
  },
  audit: { name: "audit log", description: "A read-only feed of every sensitive operation." },
  nodes: { name: "nodes", description: "The daemons sharing the store (fleet mode): labels, heartbeat, what runs on each." },
  operations: { name: "operations", description: "Health, readiness and Prometheus metrics." },
} as const;

export const TAG_ORDER = Object.values(TAGS).map(({ name, description }) => ({ name, description }));
