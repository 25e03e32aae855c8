/** Time as the rest of the code sees it; one place to read "now" so formats agree. */
export const nowMs = (): number => Date.now();
export const isoOf = (ms: number): string => new Date(ms).toISOString();
export const nowIso = (): string => isoOf(nowMs());

/**
 * The fleet's clock: the shared store's, as this node last measured it (the heartbeat sets the
 * offset; 0 on the embedded store). Leases and heartbeats are written and compared in it, so
 * a node whose own clock is off neither takes a live node's job nor looks down itself.
 */
let storeOffsetMs = 0;
export const storeNowMs = (): number => Date.now() + storeOffsetMs;
export const setStoreClockOffset = (ms: number): void => {
  storeOffsetMs = ms;
};
