// Owns the reconnect delay: exponential back-off with full jitter,
// delay = random(0, min(cap, base * 2^attempt)).

export interface BackoffOptions {
  /** Delay bound of the first retry (attempt 0), in ms. */
  baseMs: number;
  /** Largest delay bound, in ms. */
  capMs: number;
  /** Reconnect attempts in a row without an open connection before the client gives up (state `closed`). */
  maxAttempts: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 250, capMs: 30_000, maxAttempts: Infinity };

/** The delay before reconnect attempt `attempt` (0-based); `random` returns a number in [0, 1). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const bound = Math.min(options.capMs, options.baseMs * 2 ** attempt);
  return Math.floor(random() * bound);
}
