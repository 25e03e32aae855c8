/**
 * What must hold after any crash or fault, read straight from the daemon's store file and
 * from the storage itself (not through the daemon): shared by the reliability tests.
 */
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { ListObjectsV2Command, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";

export interface JobRowLite {
  id: string;
  status: string;
  attempt: number;
  started_at: number | null;
  object_key: string | null;
  destination_id: string | null;
  stored_bytes: number | null;
  sha256: string | null;
  file_deleted_at: number | null;
  error: string | null;
}

export interface StoreReport {
  integrity: string;
  foreignKeyProblems: unknown[];
  jobs: JobRowLite[];
  restores: { id: string; status: string; error: string | null }[];
  /** job id → its audit actions. */
  audit: Map<string, string[]>;
}

/** Opens the store as the restarted daemon would (WAL recovery included) and reads it. */
export function readStore(dbFile: string): StoreReport {
  const db = new Database(dbFile);
  try {
    const integrity = (db.query("PRAGMA integrity_check").all() as { integrity_check: string }[]).map((r) => r.integrity_check).join("; ");
    const foreignKeyProblems = db.query("PRAGMA foreign_key_check").all();
    const jobs = db.query("SELECT id, status, attempt, started_at, object_key, destination_id, stored_bytes, sha256, file_deleted_at, error FROM backup_jobs").all() as JobRowLite[];
    const restores = db.query("SELECT id, status, error FROM restores").all() as StoreReport["restores"];
    const audit = new Map<string, string[]>();
    for (const row of db.query("SELECT target_id, action FROM audit_events ORDER BY id").all() as { target_id: string; action: string }[]) {
      audit.set(row.target_id, [...(audit.get(row.target_id) ?? []), row.action]);
    }
    return { integrity, foreignKeyProblems, jobs, restores, audit };
  } finally {
    db.close();
  }
}

/** Problems with the audit trail: a completed job without its events. Empty when sound. */
export function auditGaps(store: StoreReport): string[] {
  const gaps: string[] = [];
  for (const job of store.jobs) {
    const actions = store.audit.get(job.id) ?? [];
    const error = job.error ? (JSON.parse(job.error) as { code: string }) : null;
    const reachedRunning = job.status === "succeeded" || job.status === "running" || job.started_at !== null || error?.code === "INTERRUPTED";
    if (reachedRunning && !actions.includes("backup_job.started")) gaps.push(`${job.id} (${job.status}) has no backup_job.started`);
    if (job.status === "succeeded" && !actions.includes("backup_job.completed")) gaps.push(`${job.id} succeeded without backup_job.completed`);
    if (job.status === "failed" && !actions.includes("backup_job.failed")) gaps.push(`${job.id} failed without backup_job.failed`);
  }
  return gaps;
}

export interface StoredObject {
  key: string;
  bytes: Uint8Array;
}

/** Every file under a local destination directory, temp files included (keys relative to it). */
export function localObjects(root: string): { key: string; path: string }[] {
  if (!existsSync(root)) return [];
  const out: { key: string; path: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push({ key: relative(root, path), path });
    }
  };
  walk(root);
  return out;
}

export const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

/** Every object in an s3rver bucket, read directly (not through any proxy). */
export async function s3Objects(endpoint: string, bucket: string): Promise<StoredObject[]> {
  const client = new S3Client({ endpoint, region: "us-east-1", forcePathStyle: true, credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  try {
    const out: StoredObject[] = [];
    let token: string | undefined;
    for (let page = 0; page < 100; page++) {
      const list = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of list.Contents ?? []) {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key! }));
        out.push({ key: o.Key!, bytes: await got.Body!.transformToByteArray() });
      }
      token = list.IsTruncated ? list.NextContinuationToken : undefined;
      if (!token) break;
    }
    return out;
  } finally {
    client.destroy();
  }
}

export function readLocal(root: string): StoredObject[] {
  return localObjects(root).map((o) => ({ key: o.key, bytes: readFileSync(o.path) }));
}

/**
 * Storage matches the store: each object is the file of a succeeded job (whose file was not
 * deleted), with the recorded size and sha256; each such job of this destination has its
 * object. Returns the problems found.
 */
export function storageProblems(objects: StoredObject[], jobs: JobRowLite[], destinationId: string, keyPrefix = ""): string[] {
  const problems: string[] = [];
  const byKey = new Map(jobs.filter((j) => j.object_key).map((j) => [j.object_key!, j]));
  for (const o of objects) {
    const job = byKey.get(keyPrefix + o.key);
    if (!job) problems.push(`${o.key}: no job owns it`);
    else if (job.status !== "succeeded" || job.file_deleted_at !== null) problems.push(`${o.key}: left by a ${job.status} job ${job.id}`);
    else if (o.bytes.length !== job.stored_bytes || sha256(o.bytes) !== job.sha256) problems.push(`${o.key}: size/sha256 differ from job ${job.id}`);
  }
  const present = new Set(objects.map((o) => keyPrefix + o.key));
  for (const j of jobs) {
    if (j.status === "succeeded" && j.file_deleted_at === null && j.destination_id === destinationId && !present.has(j.object_key!)) {
      problems.push(`job ${j.id} succeeded but its object ${j.object_key} is missing`);
    }
  }
  return problems;
}

export function fileSize(path: string): number {
  return existsSync(path) ? statSync(path).size : -1;
}
