// Owns the tiny typed event emitter behind `client.on(...)`.

export type Listener<Args extends unknown[]> = (...args: Args) => void;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyListener = (...args: any[]) => void;

export class Emitter<Events extends { [event: string]: unknown[] }> {
  private readonly listeners = new Map<keyof Events, Set<AnyListener>>();

  /** Calls `listener` on every `event`; returns the function that removes it. */
  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener as AnyListener);
    return () => void set.delete(listener as AnyListener);
  }

  protected hasListeners(event: keyof Events): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  protected emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        (listener as (...args: Events[E]) => void)(...args);
      } catch (error) {
        throwLater(error);
      }
    }
  }
}

/** Reports an exception thrown by application code (a listener) without breaking the client. */
export function throwLater(error: unknown): void {
  queueMicrotask(() => {
    throw error;
  });
}
