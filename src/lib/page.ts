/** A keyset page request as services see it: ids below `beforeId`, newest first. */
export interface PageRequest {
  limit: number;
  beforeId: string | null;
}

/** Services fetch `limit + 1` rows; this splits off the probe row that tells whether more exist. */
export function takePage<T>(rows: T[], limit: number): { items: T[]; hasMore: boolean } {
  return rows.length > limit ? { items: rows.slice(0, limit), hasMore: true } : { items: rows, hasMore: false };
}
