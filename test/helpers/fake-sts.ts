/**
 * A minimal STS endpoint on loopback that answers AssumeRole (query protocol, XML) and
 * records what it was asked: enough to test role assumption without AWS. It hands out
 * s3rver's key pair as the "temporary" credentials, so the assumed identity works there.
 */
export interface FakeSts {
  endpoint: string;
  calls: URLSearchParams[];
  /** The `Authorization` header of each call (SigV4: `Credential=<key id>/…`), in order. */
  authorizations: string[];
  /** Seconds the issued credentials live. */
  lifetimeSeconds: number;
  refuse: boolean;
  close(): void;
}

export function startFakeSts(accessKeyId: string, secretAccessKey: string): FakeSts {
  const state: FakeSts = { endpoint: "", calls: [], authorizations: [], lifetimeSeconds: 3600, refuse: false, close: () => server.stop(true) };
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(request) {
      const params = new URLSearchParams(await request.text());
      state.calls.push(params);
      state.authorizations.push(request.headers.get("authorization") ?? "");
      if (state.refuse) {
        return new Response(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error><RequestId>1</RequestId></ErrorResponse>`, {
          status: 403,
          headers: { "content-type": "text/xml" },
        });
      }
      const expiration = new Date(Date.now() + state.lifetimeSeconds * 1000).toISOString();
      return new Response(
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>` +
          `<Credentials><AccessKeyId>${accessKeyId}</AccessKeyId><SecretAccessKey>${secretAccessKey}</SecretAccessKey>` +
          `<SessionToken>session-token</SessionToken><Expiration>${expiration}</Expiration></Credentials>` +
          `<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/snapdb</Arn><AssumedRoleId>AROA:snapdb</AssumedRoleId></AssumedRoleUser>` +
          `</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
        { headers: { "content-type": "text/xml" } },
      );
    },
  });
  state.endpoint = `http://127.0.0.1:${server.port}`;
  return state;
}
