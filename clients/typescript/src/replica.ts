// Owns the ordering rules for one subscribed actor: which (epoch, version) the client holds,
// applying deltas that chain, dropping duplicates, keeping frames that arrive ahead, and
// saying when to resubscribe (with `since` after a gap, without it after an epoch change or
// a patch that does not apply). Pure logic: no I/O, no timers.

import { deepFreeze } from "./json.js";
import { applyPatch } from "./patch.js";
import type { DeletedFrame, RequestId, Since, StreamFrame, SubscribedFrame } from "./protocol.js";

export interface Change {
  kind: "snapshot" | "delta" | "deleted" | "resumed";
  epoch: number;
  version: number;
  /** The version the patch was applied to (`delta`, `resumed`). */
  from?: number;
  /** The JSON Patch applied (`delta`, `resumed`). */
  patch?: readonly unknown[];
}

export interface Update {
  state: unknown;
  change: Change;
}

/** `since`: resubscribe sending the held epoch and version; `fresh`: resubscribe without them. */
export type Resync = "none" | "since" | "fresh";

export interface Outcome {
  updates: Update[];
  resync: Resync;
}

/** Frames kept while waiting for a reply or past a gap; beyond this the oldest go (a resubscribe recovers). */
const MAX_KEPT = 512;

type Verdict = "apply" | "stale" | "ahead" | "epoch" | "overlap";

export class Replica {
  /**
   * @param filtered the subscription has `paths`: its deltas skip versions that did not change
   * the projection, so one applies when the held version is anywhere in [`from`, `to`).
   */
  constructor(private readonly filtered = false) {}

  /** The epoch held; `undefined` until the first state arrives. */
  epoch: number | undefined = undefined;
  /** The version held (0 = the actor does not exist yet: the state is the default one). */
  version = 0;
  /** The state held: deeply frozen, replaced (never mutated) on every change. */
  state: unknown = undefined;
  /** The id of the subscribe request whose reply is awaited; frames are kept until it arrives. */
  awaiting: RequestId | undefined = undefined;
  /** The state at version 0, once learnt from a reply or snapshot at version 0. */
  private defaultState: { value: unknown } | undefined = undefined;
  private kept: StreamFrame[] = [];
  private lastDeleted: string | undefined = undefined;

  /** What to send as `since` when resubscribing, if anything is held. */
  since(): Since | undefined {
    return this.epoch === undefined ? undefined : { epoch: this.epoch, version: this.version };
  }

  /** Frames kept for later (ahead of the held version, or received while a reply is awaited). */
  get keptCount(): number {
    return this.kept.length;
  }

  /** A `delta`, `snapshot` or `deleted` frame for this actor. */
  receive(frame: StreamFrame): Outcome {
    const updates: Update[] = [];
    if (this.awaiting !== undefined || this.epoch === undefined) {
      this.keep(frame);
      return { updates, resync: "none" };
    }
    switch (this.verdict(frame)) {
      case "apply":
        return this.apply(frame, updates) ? this.drain(updates) : { updates, resync: "fresh" };
      case "stale":
        return { updates, resync: "none" };
      case "ahead":
        this.keep(frame);
        return { updates, resync: "since" };
      case "epoch":
        this.keep(frame);
        return { updates, resync: "fresh" };
      case "overlap":
        return { updates, resync: "since" };
    }
  }

  /** The reply to the awaited subscribe request. */
  subscribed(frame: SubscribedFrame): Outcome {
    const updates: Update[] = [];
    this.awaiting = undefined;
    if (frame.resumed === true) {
      const from = frame.from ?? -1;
      // The fan-out was faster: what the resume brings is already held.
      if (frame.epoch === this.epoch && frame.version <= this.version) return this.drain(updates);
      if (frame.epoch !== this.epoch || from !== this.version) return { updates, resync: "fresh" };
      const patch = frame.patch ?? [];
      const next = this.patched(patch);
      if (next === undefined) return { updates, resync: "fresh" };
      this.set(next.value, frame.epoch, frame.version);
      updates.push({ state: this.state, change: { kind: "resumed", epoch: frame.epoch, version: frame.version, from, patch } });
    } else {
      this.set(frame.state, frame.epoch, frame.version);
      updates.push({ state: this.state, change: { kind: "snapshot", epoch: frame.epoch, version: frame.version } });
    }
    return this.drain(updates);
  }

  private verdict(frame: StreamFrame): Verdict {
    switch (frame.type) {
      case "snapshot":
        return frame.epoch !== this.epoch || frame.version > this.version ? "apply" : "stale";
      case "deleted":
        if (deletedKey(frame) === this.lastDeleted) return "stale";
        if (frame.epoch === this.epoch && (this.version === 0 || frame.version < this.version)) return "stale";
        return "apply";
      case "delta":
        // Version 0 is the default state whatever its epoch.
        if (frame.from === 0 && this.version === 0) return "apply";
        if (frame.epoch !== this.epoch) return "epoch";
        if (frame.to <= this.version) return "stale";
        if (frame.from === this.version) return "apply";
        if (this.filtered && frame.from < this.version) return "apply";
        return frame.from > this.version ? "ahead" : "overlap";
    }
  }

  /** Applies a frame judged `apply`; `false` when the state is no longer trustworthy. */
  private apply(frame: StreamFrame, updates: Update[]): boolean {
    switch (frame.type) {
      case "snapshot":
        this.set(frame.state, frame.epoch, frame.version);
        updates.push({ state: this.state, change: { kind: "snapshot", epoch: frame.epoch, version: frame.version } });
        return true;
      case "deleted": {
        this.lastDeleted = deletedKey(frame);
        const known = this.defaultState !== undefined;
        this.set(known ? this.defaultState?.value : null, frame.epoch, 0, false);
        updates.push({ state: this.state, change: { kind: "deleted", epoch: frame.epoch, version: 0 } });
        return known; // without the default state, a fresh subscription teaches it
      }
      case "delta": {
        const next = this.patched(frame.patch);
        if (next === undefined) return false;
        this.set(next.value, frame.epoch, frame.to);
        updates.push({
          state: this.state,
          change: { kind: "delta", epoch: frame.epoch, version: frame.to, from: frame.from, patch: frame.patch },
        });
        return true;
      }
    }
  }

  /** Applies kept frames that now chain, drops those that never will; `since` if some remain ahead. */
  private drain(updates: Update[]): Outcome {
    for (let progressed = true; progressed; ) {
      progressed = false;
      for (const frame of [...this.kept]) {
        const verdict = this.verdict(frame);
        if (verdict === "ahead") continue;
        this.kept.splice(this.kept.indexOf(frame), 1);
        if (verdict === "apply") {
          if (!this.apply(frame, updates)) return { updates, resync: "fresh" };
          progressed = true;
          break;
        }
      }
    }
    return { updates, resync: this.kept.length > 0 ? "since" : "none" };
  }

  private patched(patch: readonly unknown[]): { value: unknown } | undefined {
    try {
      return { value: applyPatch(this.state, deepFreeze(patch)) };
    } catch {
      return undefined;
    }
  }

  private set(state: unknown, epoch: number, version: number, learnDefault = version === 0): void {
    this.state = deepFreeze(state);
    this.epoch = epoch;
    this.version = version;
    if (learnDefault) this.defaultState = { value: this.state };
  }

  private keep(frame: StreamFrame): void {
    this.kept.push(frame);
    if (this.kept.length > MAX_KEPT) this.kept.shift();
  }
}

function deletedKey(frame: DeletedFrame): string {
  return `${frame.epoch}:${frame.version}`;
}
