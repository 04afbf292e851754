// Owns the member list of one actor's presence and the rule that makes it converge whatever
// order the presence frames arrive in: members are kept by member id; a join or update
// applies only with a higher `rev` than the one held; a `leave` deletes the member and
// remembers its id, and anything later about a left id is ignored. Pure logic: no I/O.

import { deepFreeze } from "./json.js";

/** One member of an actor's presence (a subscription that joined with `presence`). */
export interface Member {
  /** New for every join: a re-join (e.g. after a reconnect) is a new member. */
  readonly id: string;
  /** The member's connection: what `from` of its broadcasts names. */
  readonly connection: string;
  readonly principal?: string;
  /** The metadata the member set (a JSON object). */
  readonly presence: Readonly<Record<string, unknown>>;
  /** Milliseconds since the epoch. */
  readonly joinedAt: number;
  /** 1 at the join, one more for each update. */
  readonly rev: number;
}

export type PresenceEvent = "join" | "update" | "leave";

/** Why the member list changed: one member's frame, or a (re)subscription's reply (`sync`). */
export type MembersChange = { kind: PresenceEvent; member: Member } | { kind: "sync" };

/** Left member ids remembered; beyond this the oldest are forgotten (their frames are long gone). */
const MAX_LEFT = 4096;

/** Member ids that left, oldest first. Shared by the lists of one subscription. */
class LeftIds {
  private readonly ids = new Set<string>();

  has(id: string): boolean {
    return this.ids.has(id);
  }

  add(id: string): void {
    this.ids.add(id);
    if (this.ids.size > MAX_LEFT) this.ids.delete(this.ids.values().next().value as string);
  }
}

export class MemberList {
  private readonly held = new Map<string, Member>();
  private sorted: readonly Member[] | undefined = Object.freeze([]);

  constructor(private readonly left = new LeftIds()) {}

  /** An empty list that still ignores the ids this one saw leave (for a resubscription's reply). */
  fork(): MemberList {
    return new MemberList(this.left);
  }

  /** Applies one presence frame; true when the list changed. */
  apply(event: PresenceEvent, member: Member): boolean {
    if (this.left.has(member.id)) return false;
    if (event === "leave") {
      this.left.add(member.id);
      return this.changed(this.held.delete(member.id));
    }
    const current = this.held.get(member.id);
    if (current !== undefined && current.rev >= member.rev) return false;
    this.held.set(member.id, deepFreeze({ ...member }));
    return this.changed(true);
  }

  /** Applies a `subscribed` reply's members, each as a join; true when the list changed. */
  merge(members: readonly Member[]): boolean {
    let changed = false;
    for (const member of members) changed = this.apply("join", member) || changed;
    return changed;
  }

  get(id: string): Member | undefined {
    return this.held.get(id);
  }

  /** The members, oldest join first (frozen; a new array after every change). */
  list(): readonly Member[] {
    this.sorted ??= Object.freeze([...this.held.values()].sort((a, b) => a.joinedAt - b.joinedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
    return this.sorted;
  }

  private changed(changed: boolean): boolean {
    if (changed) this.sorted = undefined;
    return changed;
  }
}
