import { t } from "elysia";
import { PageQuery, pageOf } from "../../http/pagination.ts";

const auth = t.Object(
  {
    type: t.Union([t.Literal("accessKey"), t.Literal("assumeRole")]),
    accessKeyId: t.Optional(t.String({ minLength: 1, maxLength: 128 })),
    secretAccessKey: t.Optional(t.String({ minLength: 1, maxLength: 256, description: "Write-only." })),
    roleArn: t.Optional(t.String({ minLength: 1, maxLength: 2048, examples: ["arn:aws:iam::123456789012:role/snapdb-backups"] })),
    externalId: t.Optional(t.String({ minLength: 2, maxLength: 1224, description: "Write-only." })),
  },
  {
    additionalProperties: false,
    description:
      '`{ "type": "accessKey", "accessKeyId", "secretAccessKey" }` or `{ "type": "assumeRole", "roleArn", "externalId" }` ' +
      "(STS AssumeRole with the ExternalId, from the daemon's own AWS identity).",
  },
);

const s3Fields = {
  endpoint: t.Optional(
    t.String({
      maxLength: 500,
      description:
        "Empty for AWS; `https://minio.example.com:9000` otherwise. Every connection to it (verify, backups, restores, deletes) goes only to addresses the daemon's outbound network policy allows (`network.denyCidrs`, by default the cloud metadata service 169.254.0.0/16 and fd00:ec2::254/128; `network.allowCidrs` when set): its host name is resolved and each address checked at connect time. A refused endpoint fails like an unreachable one (`STORAGE_UNREACHABLE`).",
    }),
  ),
  stsEndpoint: t.Optional(
    t.String({ maxLength: 500, description: "STS endpoint for `assumeRole`; default: `endpoint` when set (MinIO), else AWS STS." }),
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

export const DestinationUpdate = t.Object(
  { name: t.Optional(t.String({ minLength: 1, maxLength: 100 })), ...s3Fields, ...localFields },
  { additionalProperties: false },
);

const Verify = t.Union([
  t.Object({
    ok: t.Boolean(),
    latencyMs: t.Optional(t.Number()),
    error: t.Optional(t.Object({ code: t.String(), message: t.String() })),
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
    stsEndpoint: t.Optional(t.String()),
    region: t.Optional(t.String()),
    bucket: t.Optional(t.String()),
    prefix: t.Optional(t.String()),
    forcePathStyle: t.Optional(t.Boolean()),
    auth: t.Optional(
      t.Object({
        type: t.Union([t.Literal("accessKey"), t.Literal("assumeRole")]),
        accessKeyId: t.Optional(t.String()),
        roleArn: t.Optional(t.String()),
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
    description: "Secrets (`secretAccessKey`, `externalId`) are write-only and never returned.",
  },
);

export const DestinationPage = pageOf(Destination);

export const DestinationQuery = t.Object(
  { ...PageQuery, kind: t.Optional(t.Union([t.Literal("managed"), t.Literal("s3"), t.Literal("local")])) },
  { additionalProperties: false },
);

export const IdParams = t.Object({ id: t.String({ maxLength: 64 }) });

export const VerifyOutcome = t.Object({
  ok: t.Boolean(),
  latencyMs: t.Optional(t.Number()),
  error: t.Optional(
    t.Object({
      code: t.String({ examples: ["BUCKET_NOT_FOUND", "ACCESS_DENIED", "STORAGE_UNREACHABLE", "ASSUME_ROLE_FAILED"] }),
      message: t.String(),
    }),
  ),
});
