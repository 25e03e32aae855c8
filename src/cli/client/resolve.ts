import { ApiError, type ApiClient } from "./api.ts";

export interface SourceRef {
  id: string;
  name: string;
  engine: string;
}

/**
 * A data source named by id or by name. Names are unique per organisation; `?q=` matches a
 * substring, so the exact name is picked from its answer (case-sensitive first, then not).
 */
export async function resolveSource(api: ApiClient, ref: string): Promise<SourceRef> {
  if (/^ds_[A-Za-z0-9]+$/.test(ref)) {
    try {
      return await api.get<SourceRef>(`/data-sources/${encodeURIComponent(ref)}`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== "NOT_FOUND") throw err;
    }
  }
  const page = await api.get<{ items: SourceRef[] }>("/data-sources", { q: ref, limit: 200 });
  const exact = page.items.find((s) => s.name === ref) ?? page.items.filter((s) => s.name.toLowerCase() === ref.toLowerCase()).at(0);
  if (exact) return exact;
  const near = page.items.slice(0, 5).map((s) => s.name);
  throw new ApiError("NOT_FOUND", `no data source named "${ref}"${near.length ? ` (did you mean: ${near.join(", ")}?)` : ""}`);
}

/** id → name of the org's data sources (the first 200), for tables that show jobs. */
export async function sourceNames(api: ApiClient): Promise<Map<string, string>> {
  const page = await api.get<{ items: SourceRef[] }>("/data-sources", { limit: 200 });
  return new Map(page.items.map((s) => [s.id, s.name]));
}

/** The dump size of the source's newest successful backup: what a running one will likely reach. */
export async function lastSuccessfulSize(api: ApiClient, dataSourceId: string): Promise<number | null> {
  const page = await api.get<{ items: { sizeBytes: number | null }[] }>("/backup-jobs", { dataSourceId, status: "succeeded", limit: 1 });
  return page.items[0]?.sizeBytes ?? null;
}
