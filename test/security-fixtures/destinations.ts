import type { Fixtures, RouteFixture } from "../helpers/security-suite.ts";

let n = 0;

/** A bring-your-own S3 destination in `org` (never contacted: the other org's call stops at 404). */
const destination: RouteFixture = {
  async params(h, org) {
    const token = await h.token(org);
    const res = await h.call("POST", "/storage-destinations", {
      token,
      body: {
        kind: "s3",
        name: `security-fixture-${++n}`,
        bucket: "fixture-bucket",
        endpoint: "http://127.0.0.1:9",
        auth: { type: "accessKey", accessKeyId: "AKIAFIXTURE", secretAccessKey: "fixture-secret" },
      },
    });
    if (res.status !== 201) throw new Error(`destination fixture: ${res.status} ${res.text}`);
    return { id: res.body.id };
  },
  body: () => ({ name: `renamed-${++n}` }),
};

export const fixtures: Fixtures = {
  "/storage-destinations/{id}": destination,
  "/storage-destinations/{id}/verify": { params: destination.params },
};
