import { t } from "elysia";
import { Int } from "../../http/json-int.ts";
import { oneOf } from "../../http/one-of.ts";
import { PageQuery, pageOf } from "../../http/pagination.ts";
import { STORAGE_FAILURE_CODES } from "../../lib/failure-codes.ts";

const auth = t.Object(
  {
    type: t.Union([t.Literal("accessKey"), t.Literal("assumeRole")]),
    accessKeyId: t.Optional(t.String({ minLength: 1, maxLength: 128 })),
    secretAccessKey: t.Optional(t.String({ minLength: 1, maxLength: 256, description: "Write-only." })),
    roleArn: t.Optional(
      t.String({
        minLength: 1,
        maxLength: 2048,
        description: "An IAM role ARN, `arn:aws…:iam::<12-digit account>:role/…`; it must match one of the operator's " + "`storage.allowedRoleArns` globs when that list is set (else 400).",
        examples: ["arn:aws:iam::123456789012:role/snapdb-backups"],
      }),
    ),
    externalId: t.Optional(
      t.String({
        readOnly: true,
        description: "Read-only: snapdb generates the ExternalId per organisation (see `GET /storage-destinations/assume-role-info`); " + "a request that sends one is refused (400).",
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      '`{ "type": "accessKey", "accessKeyId", "secretAccessKey" }` or `{ "type": "assumeRole", "roleArn" }`. assumeRole: ' +
      "the daemon asks the operator's STS (`storage.stsEndpoint`, default AWS STS) for the role with its own AWS " +
      "identity and the org's ExternalId, which snapdb generates; the role's temporary credentials then go to `endpoint`. " +
      "The daemon's identity is never sent to `endpoint`.",
  },
);

const s3Fields = {
  endpoint: t.Optional(
    t.String({
      maxLength: 500,
      description:
        "Empty for AWS; `https://minio.example.com:9000` otherwise. Receives requests signed with `auth`'s keys or the " +
        "assumed role's temporary credentials only (there is no tenant STS endpoint: `stsEndpoint` is refused, 400). " +
        "Every connection to it goes only to addresses the daemon's outbound network policy allows (`network.denyCidrs`, by default the cloud metadata service 169.254.0.0/16 and fd00:ec2::254/128; `network.allowCidrs` when set): its host name is resolved and each address checked at connect time. A refused endpoint fails like an unreachable one (`STORAGE_UNREACHABLE`).",
    }),
  ),
  region: t.Optional(t.String({ minLength: 1, maxLength: 64, description: "Default `us-east-1`." })),
  bucket: t.Optional(t.String({ minLength: 1, maxLength: 255 })),
  prefix: t.Optional(t.String({ maxLength: 512, description: "Key prefix; backups go under `{prefix}/{orgId}/…`." })),
  forcePathStyle: t.Optional(t.Boolean({ description: "Path-style addressing (MinIO); default true when an endpoint is set." })),
  auth: t.Optional(auth),
};

const localFields = {
  path: t.Optional(t.String({ minLength: 1, maxLength: 4096, description: "Absolute directory under one of the operator's allowed local roots." })),
};

export const DestinationCreate = t.Object(
  {
    kind: t.Union([t.Literal("s3"), t.Literal("local")], { description: "`managed` is created by `POST /storage-destinations/managed/ensure`." }),
    name: t.Optional(t.String({ minLength: 1, maxLength: 100, description: "Unique in the org; derived from the bucket or path when left out." })),
    ...s3Fields,
    ...localFields,
  },
  { additionalProperties: false },
);

export const DestinationUpdate = t.Object({ name: t.Optional(t.String({ minLength: 1, maxLength: 100 })), ...s3Fields, ...localFields }, { additionalProperties: false });

const PROBE_MS = "Writing, reading back and deleting the probe object, in whole milliseconds.";

const Verify = t.Union([
  t.Object({
    ok: t.Boolean(),
    latencyMs: t.Optional(Int({ description: PROBE_MS })),
    error: t.Optional(t.Object({ code: oneOf(STORAGE_FAILURE_CODES), message: t.String() })),
    at: t.String({ format: "date-time" }),
  }),
  t.Null(),
]);

export const Destination = t.Object(
  {
    id: t.String({ examples: ["dst_01JD8Z3K6Y6Q2W9V7T5R4E3W2Q"] }),
    kind: t.Union([t.Literal("managed"), t.Literal("s3"), t.Literal("local")]),
    name: t.String(),
    endpoint: t.Optional(t.String()),
    region: t.Optional(t.String()),
    bucket: t.Optional(t.String()),
    prefix: t.Optional(t.String()),
    forcePathStyle: t.Optional(t.Boolean()),
    auth: t.Optional(
      t.Object({
        type: t.Union([t.Literal("accessKey"), t.Literal("assumeRole")]),
        accessKeyId: t.Optional(t.String()),
        roleArn: t.Optional(t.String()),
        externalId: t.Optional(
          t.String({
            description: "assumeRole: the ExternalId snapdb sends to STS, generated per organisation (read-only); name it in the role's trust policy.",
            examples: ["snapdb-5f0c2a9e1d7b4c3a8e6f1b2d9c4a7e30"],
          }),
        ),
      }),
    ),
    path: t.Optional(t.String()),
    managed: t.Optional(t.Object({ backend: t.Union([t.Literal("local"), t.Literal("s3")]) })),
    lastVerify: Verify,
    createdAt: t.String({ format: "date-time" }),
    updatedAt: t.String({ format: "date-time" }),
  },
  {
    $id: "#/components/schemas/StorageDestination",
    title: "StorageDestination",
    description: "`secretAccessKey` is write-only and never returned. `auth.externalId` (assumeRole) is read-only.",
  },
);

export const DestinationPage = pageOf(Destination);

export const DestinationQuery = t.Object({ ...PageQuery, kind: t.Optional(t.Union([t.Literal("managed"), t.Literal("s3"), t.Literal("local")])) }, { additionalProperties: false });

export const IdParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const VerifyOutcome = t.Object({
  ok: t.Boolean(),
  latencyMs: t.Optional(Int({ description: PROBE_MS })),
  error: t.Optional(
    t.Object({
      code: oneOf(STORAGE_FAILURE_CODES),
      message: t.String(),
    }),
  ),
});

export const AssumeRoleInfo = t.Object(
  {
    externalId: t.String({
      description: "The ExternalId snapdb sends with every AssumeRole of this organisation: stable, generated by snapdb.",
      examples: ["snapdb-5f0c2a9e1d7b4c3a8e6f1b2d9c4a7e30"],
    }),
    stsEndpoint: t.Optional(t.String({ description: "The operator's STS endpoint, when not AWS STS: the only endpoint that receives the daemon's own identity." })),
  },
  { $id: "#/components/schemas/AssumeRoleInfo", title: "AssumeRoleInfo" },
);
