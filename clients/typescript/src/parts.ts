// Owns reassembly of `part` frames: a message over the 128 KB limit arrives as `count`
// ordered parts sharing an opaque `message` id; joined in index order, their `data` is the
// JSON text of the original frame. Duplicated parts are ignored. A message is lost when a
// part stays missing (timeout), when a newer state message for the same actor starts, or
// when a part disagrees on `count` (a foreign part); the owner then resubscribes.

import type { Clock } from "./clock.js";
import type { PartFrame } from "./protocol.js";

export interface PartEvents {
  /** All parts arrived: `text` is the original frame. */
  complete(text: string): void;
  /** A message was dropped; `actor` when its first part named one. */
  lost(actor: string | undefined, reason: "timeout" | "superseded" | "foreign"): void;
}

interface Pending {
  count: number;
  parts: (string | undefined)[];
  received: number;
  actor: string | undefined;
  timer: unknown;
}

/** How many finished message ids are remembered, to ignore their late duplicate parts. */
const REMEMBERED = 256;

export class PartAssembler {
  private readonly pending = new Map<string, Pending>();
  private readonly finished = new Set<string>();

  constructor(
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    private readonly events: PartEvents,
  ) {}

  receive(frame: PartFrame): void {
    const key = String(frame.message);
    if (this.finished.has(key)) return; // a late duplicate of a finished or dropped message
    let message = this.pending.get(key);
    if (message === undefined) {
      message = { count: frame.count, parts: new Array<string | undefined>(frame.count), received: 0, actor: undefined, timer: undefined };
      this.pending.set(key, message);
    } else if (message.count !== frame.count) {
      return this.drop(key, "foreign");
    }
    if (message.parts[frame.index] !== undefined) return; // duplicate part
    message.parts[frame.index] = frame.data;
    message.received += 1;
    if (frame.index === 0) {
      const actor = actorOf(frame.data);
      if (actor !== undefined) {
        this.superseded(actor, key);
        message.actor = actor;
      }
    }
    this.clock.clearTimeout(message.timer);
    if (message.received === message.count) {
      this.finish(key);
      this.events.complete(message.parts.join(""));
    } else {
      message.timer = this.clock.setTimeout(() => this.drop(key, "timeout"), this.timeoutMs);
    }
  }

  /** A newer state message for `actor` arrived: its unfinished messages are lost. */
  superseded(actor: string, except?: string): void {
    for (const [key, message] of this.pending) {
      if (key !== except && message.actor === actor) this.drop(key, "superseded");
    }
  }

  /** Forgets everything (the connection closed: parts never span connections). */
  reset(): void {
    for (const message of this.pending.values()) this.clock.clearTimeout(message.timer);
    this.pending.clear();
    this.finished.clear();
  }

  private drop(key: string, reason: "timeout" | "superseded" | "foreign"): void {
    const message = this.pending.get(key);
    if (message === undefined) return;
    this.finish(key);
    this.events.lost(message.actor, reason);
  }

  private finish(key: string): void {
    const message = this.pending.get(key);
    if (message !== undefined) this.clock.clearTimeout(message.timer);
    this.pending.delete(key);
    this.finished.add(key);
    if (this.finished.size > REMEMBERED) {
      const oldest = this.finished.values().next().value;
      if (oldest !== undefined) this.finished.delete(oldest);
    }
  }
}

/** The actor named by the first part of a `subscribed` or `snapshot` frame (its `actor` precedes `state`). */
export function actorOf(firstPart: string): string | undefined {
  const match = /^\{"type":"(?:subscribed|snapshot)"[^{[]*?"actor":("(?:[^"\\]|\\.)*")/.exec(firstPart);
  if (match?.[1] === undefined) return undefined;
  try {
    const actor: unknown = JSON.parse(match[1]);
    return typeof actor === "string" ? actor : undefined;
  } catch {
    return undefined;
  }
}
