/**
 * The serving API key as the extension keeps it in SecretStorage: bound to the origins it may be sent
 * to. Plain data and decisions, without vscode, so that they can be tested alone.
 */

/** The key, and the origins (scheme://host:port) it may go to: first the one it was entered for, then those the user allowed. */
export interface ServingKey {
  key: string;
  origins: string[];
}

/** The stored value read back; a bare key stored before keys were bound is bound to no origin yet. */
export function parseServingKey(stored: string | undefined): ServingKey | undefined {
  if (!stored) return undefined;
  try {
    const value = JSON.parse(stored) as Partial<ServingKey>;
    if (typeof value.key === 'string' && Array.isArray(value.origins)) return { key: value.key, origins: value.origins.filter((o) => typeof o === 'string') };
  } catch {
    // a bare key
  }
  return { key: stored, origins: [] };
}

/** The origin of an endpoint URL (an SGLang one, sglang+http://…, is its http(s) address), or undefined when it is not one. */
export function originOf(url: string): string | undefined {
  try {
    const parsed = new URL(url.trim().replace(/^sglang\+/i, ''));
    return /^https?:$/.test(parsed.protocol) ? parsed.origin : undefined;
  } catch {
    return undefined;
  }
}

/** The endpoints' origins the key is not bound to and the user has not yet declined: each needs asking. */
export function originsToAsk(key: ServingKey, origins: readonly string[], declined: ReadonlySet<string>): string[] {
  return [...new Set(origins)].filter((origin) => !key.origins.includes(origin) && !declined.has(origin));
}
