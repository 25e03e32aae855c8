/**
 * Masks a secret in text meant for a user (a tool's stderr in job.error, a driver's error
 * message) without garbling the text around it. A secret is masked where it stands as
 * itself, a whole token (not inside a longer word); a long one (8+ characters, which no
 * ordinary word happens to contain) everywhere. Masking a one-letter password inside words
 * turned `pg_dump: … accepting` into `***g_dum***: … acce***ting`, which hides nothing
 * (the tools never echo a password they got through the environment) and shows where the
 * secret's characters stand.
 */
export const MASK = "***";
const EVERYWHERE_FROM = 8;
const WORD = /[\p{L}\p{N}_]/u;

export function redactSecret(text: string, secret: string | null | undefined, mask = MASK): string {
  if (!secret) return text;
  if (secret.length >= EVERYWHERE_FROM) return text.split(secret).join(mask);
  const first = WORD.test(secret[0]!);
  const last = WORD.test(secret[secret.length - 1]!);
  let out = "";
  let from = 0;
  for (let at = text.indexOf(secret); at !== -1; at = text.indexOf(secret, at + 1)) {
    if (at < from) continue;
    const before = at > 0 ? text[at - 1]! : "";
    const after = text[at + secret.length] ?? "";
    // A boundary is needed only where the secret itself starts or ends with a word character.
    const standsAlone = (!first || !before || !WORD.test(before)) && (!last || !after || !WORD.test(after));
    if (!standsAlone) continue;
    out += text.slice(from, at) + mask;
    from = at + secret.length;
  }
  return out + text.slice(from);
}

export function redactSecrets(text: string, secrets: readonly (string | null | undefined)[], mask = MASK): string {
  // Longest first, so a secret that contains another is masked whole.
  return [...secrets].sort((a, b) => (b?.length ?? 0) - (a?.length ?? 0)).reduce<string>((t, s) => redactSecret(t, s, mask), text);
}
