import { UsageError, type Command } from "../command.ts";
import type { ApiClient } from "./api.ts";
import { CLIENT_HELP, CLIENT_OPTIONS, connect } from "./connect.ts";
import { renderObject, renderTable } from "./format.ts";
import { sourceNames } from "./resolve.ts";

type Values = Record<string, string | boolean | string[] | undefined>;

export interface Filter {
  flag: string;
  query: string;
  help: string;
  /** Turns what the user typed into what the API takes (a source name into its id, say). */
  resolve?: (api: ApiClient, value: string) => Promise<string>;
}

export interface ResourceSpec {
  name: string;
  summary: string;
  /** The collection's path: `/data-sources`. */
  path: string;
  /** "data source" and "data sources", for messages. */
  noun: string;
  plural: string;
  filters: Filter[];
  headers: string[];
  row(item: any, names: Map<string, string>): string[];
  /** Whether rows show data source names (one more GET). */
  showsSources?: boolean;
}

const str = (v: unknown) => (typeof v === "string" ? v : undefined);

/**
 * `snapdb <things> [show ID]`: a list (one page, newest first) or one item, as a table or
 * as the API's own JSON with --json.
 */
export function resourceCommand(spec: ResourceSpec): Command {
  const filterOptions = Object.fromEntries(spec.filters.map((f) => [f.flag, { type: "string" as const }]));
  const filterHelp = spec.filters.map((f) => `  --${`${f.flag} ${f.flag.toUpperCase().replace(/-/g, "_")}`.padEnd(22)} ${f.help}`).join("\n");
  return {
    name: spec.name,
    summary: spec.summary,
    positionals: true,
    completes: ["show"],
    usage: `snapdb ${spec.name} [flags]          list (newest first, one page)
snapdb ${spec.name} show ID [--json]  one ${spec.noun}

  --json                   the API's JSON as is (for scripts and jq)
  --limit N                page size, 1–200 (default 50)
  --cursor C               the next page (printed under a full page)
${filterHelp}

${CLIENT_HELP}`,
    options: { ...CLIENT_OPTIONS, json: { type: "boolean" }, limit: { type: "string" }, cursor: { type: "string" }, ...filterOptions },
    async run(values: Values, positionals: string[]) {
      const [verb, id, ...extra] = positionals;
      if (verb !== undefined && verb !== "show") throw new UsageError(`unknown subcommand "${verb}" (list: snapdb ${spec.name}; one: snapdb ${spec.name} show ID)`);
      if (verb === "show" && !id) throw new UsageError(`show needs the ${spec.noun}'s id`);
      if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
      const limit = str(values.limit);
      if (limit !== undefined && !/^\d+$/.test(limit)) throw new UsageError("--limit must be a number from 1 to 200");
      const { api } = connect(values);

      if (id) {
        const item = await api.get(`${spec.path}/${encodeURIComponent(id)}`);
        process.stdout.write(values.json ? `${JSON.stringify(item, null, 2)}\n` : renderObject(item));
        return 0;
      }
      const query: Record<string, string | undefined> = { limit, cursor: str(values.cursor) };
      for (const f of spec.filters) {
        const v = str(values[f.flag]);
        if (v !== undefined) query[f.query] = f.resolve ? await f.resolve(api, v) : v;
      }
      const page = await api.get<{ items: any[]; cursors: { next: string | null } }>(spec.path, query);
      if (values.json) {
        process.stdout.write(`${JSON.stringify(page, null, 2)}\n`);
        return 0;
      }
      if (!page.items.length) {
        process.stdout.write(`no ${spec.plural}\n`);
        return 0;
      }
      const names = spec.showsSources ? await sourceNames(api) : new Map<string, string>();
      process.stdout.write(
        renderTable(
          spec.headers,
          page.items.map((item) => spec.row(item, names)),
        ),
      );
      if (page.cursors.next) process.stderr.write(`more: the same command with --cursor ${page.cursors.next}\n`);
      return 0;
    },
  };
}
