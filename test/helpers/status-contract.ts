/**
 * The served OpenAPI document as a contract every answer the tests receive is held to:
 * the status is one the operation declares, the answer carries `x-request-id`, and a JSON
 * body matches the schema declared for that status (a body-less status has no body).
 * test/helpers/harness.ts and test/helpers/daemon-api.ts check every call, so a test whose
 * call gets an undeclared status or an off-schema body fails, whichever file it is in.
 *
 * With SNAPDB_RECORD_STATUSES=<file>, every answer that keeps the contract also appends
 * `METHOD /template status` to that file: the pairs the suites exercise.
 */
import { appendFileSync } from "node:fs";
import Ajv2020, { type ValidateFunction } from "ajv/dist/2020.js";

type Json = Record<string, any>;

interface Operation {
  method: string;
  template: string;
  segments: string[];
  params: number;
  op: Json;
}

export interface Answer {
  method: string;
  /** The path as requested, query string included. */
  path: string;
  status: number;
  headers: Headers;
  text: string;
}

const METHODS = ["get", "put", "post", "delete", "patch"];

export class ApiContract {
  private readonly operations: Operation[];
  private readonly ajv: Ajv2020;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(readonly spec: Json) {
    this.operations = Object.entries(spec.paths as Record<string, Json>).flatMap(([template, item]) =>
      Object.keys(item)
        .filter((m) => METHODS.includes(m))
        .map((m) => {
          const segments = template.split("/");
          return { method: m.toUpperCase(), template, segments, params: segments.filter((s) => s.startsWith("{")).length, op: item[m] };
        }),
    );
    // Literal segments win over `{id}`, as they do in the router (`/storage-destinations/assume-role-info`).
    this.operations.sort((a, b) => a.params - b.params);
    this.ajv = new Ajv2020({ strict: false, validateFormats: false, validateSchema: false, allErrors: true });
    this.ajv.addSchema(spec, "openapi");
  }

  /** The operation a request reaches, or null for a path or method the document does not have. */
  operationFor(method: string, path: string): Operation | null {
    const segments = path.split("?")[0]!.split("/");
    return (
      this.operations.find(
        (o) => o.method === method.toUpperCase() && o.segments.length === segments.length && o.segments.every((s, i) => (s.startsWith("{") ? segments[i] !== "" : s === segments[i])),
      ) ?? null
    );
  }

  /** What is wrong with an answer; empty when it keeps the contract (or no operation matched). */
  problems(answer: Answer): string[] {
    const operation = this.operationFor(answer.method, answer.path);
    if (!operation) return [];
    const where = `${operation.method} ${operation.template} → ${answer.status}`;
    const declared = operation.op.responses?.[String(answer.status)] as Json | undefined;
    if (!declared) return [`${where}: status not declared (declared: ${Object.keys(operation.op.responses ?? {}).join(", ")}); body: ${answer.text.slice(0, 300)}`];
    const problems: string[] = [];
    if (!answer.headers.get("x-request-id")) problems.push(`${where}: no x-request-id header`);
    const contentType = (answer.headers.get("content-type") ?? "").split(";")[0]!.trim();
    const media = declared.content as Record<string, Json> | undefined;
    if (!media) {
      if (answer.text !== "") problems.push(`${where}: declared without a body, answered ${JSON.stringify(answer.text.slice(0, 200))}`);
      return problems;
    }
    if (!media[contentType]) {
      problems.push(`${where}: content-type ${contentType || "(none)"} is not one of the declared ${Object.keys(media).join(", ")}`);
      return problems;
    }
    if (contentType !== "application/json") return problems;
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      return [...problems, `${where}: declared JSON, answered ${JSON.stringify(answer.text.slice(0, 200))}`];
    }
    const validate = this.validatorFor(operation, String(answer.status), contentType);
    if (!validate(body)) {
      const errors = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "/"} ${e.message}`);
      problems.push(`${where}: body does not match the declared schema: ${errors.join("; ")}; body: ${answer.text.slice(0, 300)}`);
    }
    return problems;
  }

  /** Throws when the answer breaks the contract; else records the pair when asked to. */
  check(answer: Answer): void {
    const problems = this.problems(answer);
    if (problems.length) throw new Error(`the answer breaks the served OpenAPI document:\n  ${problems.join("\n  ")}`);
    const operation = this.operationFor(answer.method, answer.path);
    if (operation && RECORD_FILE) appendFileSync(RECORD_FILE, `${operation.method} ${operation.template} ${answer.status}\n`);
  }

  private validatorFor(operation: Operation, status: string, contentType: string): ValidateFunction {
    const pointer = ["paths", operation.template, operation.method.toLowerCase(), "responses", status, "content", contentType, "schema"]
      .map((p) => p.replace(/~/g, "~0").replace(/\//g, "~1"))
      .join("/");
    let validate = this.validators.get(pointer);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `openapi#/${pointer}` });
      this.validators.set(pointer, validate);
    }
    return validate;
  }
}

const RECORD_FILE = process.env.SNAPDB_RECORD_STATUSES;

/** One contract per served document text: harnesses and daemons of one run serve the same routes. */
const contracts = new Map<string, ApiContract>();

export function contractFor(served: unknown): ApiContract {
  const spec = served as Json;
  const key = JSON.stringify(spec.paths);
  let contract = contracts.get(key);
  if (!contract) {
    contract = new ApiContract(spec);
    contracts.set(key, contract);
  }
  return contract;
}
