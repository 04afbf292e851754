// Owns the test doubles: a fake clock (time moves only when a test says so) and a fake
// WebSocket whose connections a test opens, feeds frames to and drops.

import type { Clock } from "../src/clock.js";
import type { WebSocketConstructor } from "../src/client.js";

export class FakeClock implements Clock {
  now = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  setTimeout(callback: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward by `ms`, running every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (next === undefined || entry[1].at < next[1].at)) next = entry;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.now = next[1].at;
      next[1].callback();
    }
    this.now = end;
  }

  /** Delays of the timers still pending, from now. */
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.now);
  }
}

export class FakeSocket {
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: unknown) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: string[] = [];
  closed = false;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {}

  send(data: string): void {
    if (this.closed) throw new Error("send on a closed socket");
    this.sent.push(data);
  }

  close(): void {
    this.closed = true;
  }

  // ---- driven by tests ----

  open(): void {
    this.onopen?.({});
  }

  deliver(frame: object | string): void {
    this.onmessage?.({ data: typeof frame === "string" ? frame : JSON.stringify(frame) });
  }

  /** The connection drops (network, server restart). */
  drop(): void {
    this.closed = true;
    this.onclose?.({ code: 1006 });
  }

  frames(): Record<string, unknown>[] {
    return this.sent.map((text) => JSON.parse(text) as Record<string, unknown>);
  }

  /** Sent frames with `action`. */
  sentActions(action: string): Record<string, unknown>[] {
    return this.frames().filter((f) => f.action === action);
  }

  lastSent(action: string): Record<string, unknown> {
    const found = this.sentActions(action).at(-1);
    if (found === undefined) throw new Error(`no ${action} frame sent; sent: ${this.sent.join(" ")}`);
    return found;
  }
}

/** A WebSocket class recording every connection it makes. */
export class FakeNetwork {
  readonly sockets: FakeSocket[] = [];
  readonly WebSocket: WebSocketConstructor;

  constructor() {
    const sockets = this.sockets;
    this.WebSocket = class extends FakeSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    };
  }

  get last(): FakeSocket {
    const socket = this.sockets.at(-1);
    if (socket === undefined) throw new Error("no socket yet");
    return socket;
  }
}

/** Settles after every queued microtask and promise reaction has run. */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
