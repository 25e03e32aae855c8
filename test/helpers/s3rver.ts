import type { AddressInfo } from "node:net";
// s3rver ships no types; it is a Koa app that stores objects in a directory.
// @ts-expect-error untyped package
import S3rver from "s3rver";
import { tempDir } from "./tmp.ts";

export interface S3Server {
  endpoint: string;
  region: string;
  /** s3rver's built-in account (it does not check SigV4 signatures, only the key id). */
  accessKeyId: string;
  secretAccessKey: string;
  createBucket(name: string): Promise<void>;
  close(): Promise<void>;
}

/** A real S3-protocol server (s3rver) on loopback, on a free port, in a throwaway directory. */
export async function startS3rver(buckets: string[] = []): Promise<S3Server> {
  const dir = tempDir("snapdb-s3rver");
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory: dir.path,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const address = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${address.port}`;
  return {
    endpoint,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    async createBucket(name) {
      await server.store.putBucket(name);
    },
    async close() {
      await server.close();
      dir.cleanup();
    },
  };
}
