/**
 * A URL as it may be printed or logged: its password (user-info or a `?password=`-like
 * query parameter) replaced by `mask`. An unparsable URL is not echoed at all, since it may
 * hold a password where the parser could not find it.
 */
export function maskUrl(url: string, mask = "***"): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = mask;
    for (const key of [...u.searchParams.keys()]) if (/pass/i.test(key)) u.searchParams.set(key, mask);
    return u.toString().replaceAll(encodeURIComponent(mask), mask);
  } catch {
    return "(an unparsable URL)";
  }
}
