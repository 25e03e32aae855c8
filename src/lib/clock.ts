/** Time as the rest of the code sees it; one place to read "now" so formats agree. */
export const nowMs = (): number => Date.now();
export const isoOf = (ms: number): string => new Date(ms).toISOString();
export const nowIso = (): string => isoOf(nowMs());
