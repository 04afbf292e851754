// Owns the wire format: the types of the frames the server sends and the checks that turn a
// parsed JSON value into one of them (anything malformed is ignored by the client).

import { isObject } from "./json.js";
import type { Member, PresenceEvent } from "./presence.js";

export type RequestId = number | string;

/** The state a client holds, sent to resume a subscription. */
export interface Since {
  epoch: number;
  version: number;
}

export interface SubscribedFrame {
  type: "subscribed";
  id?: RequestId;
  actor: string;
  epoch: number;
  version: number;
  /** A fresh snapshot (absent when `resumed` is true). */
  state?: unknown;
  /** `true`: `patch` takes the state at `from` to `version`; `false`: `since` could not be served. */
  resumed?: boolean;
  from?: number;
  patch?: unknown[];
  /** The actor's presence members, when the subscribe joined (`presence`) or asked (`members`). */
  members?: Member[];
  /** This connection's member id, when it joined. */
  memberId?: string;
}

export interface DeltaFrame {
  type: "delta";
  actor: string;
  epoch: number;
  from: number;
  to: number;
  patch: unknown[];
}

export interface SnapshotFrame {
  type: "snapshot";
  actor: string;
  epoch: number;
  version: number;
  state: unknown;
}

export interface DeletedFrame {
  type: "deleted";
  actor: string;
  epoch: number;
  version: number;
}

export interface PartFrame {
  type: "part";
  message: string | number;
  index: number;
  count: number;
  data: string;
}

export interface ResultFrame {
  type: "result";
  id?: RequestId;
  value: unknown;
  version?: number;
}

export interface ErrorFrame {
  type: "error";
  id?: RequestId;
  code: string;
  message: string;
  requestId?: string;
  /** For `rate_limited`: when a retry may succeed. */
  retryAfterMs?: number;
}

export interface PongFrame {
  type: "pong";
  id?: RequestId;
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  id?: RequestId;
  actor: string;
}

/** A member of `actor`'s presence joined, changed its metadata or left. */
export interface PresenceFrame {
  type: "presence";
  actor: string;
  event: PresenceEvent;
  member: Member;
}

/** An ephemeral message a subscriber of `actor` sent (connection `from`). */
export interface BroadcastFrame {
  type: "broadcast";
  actor: string;
  event: string;
  payload: unknown;
  from: string;
}

/** The reply to `broadcast` and `presence.update` (`member`: the sender's membership after an update). */
export interface SentFrame {
  type: "sent";
  id?: RequestId;
  actor: string;
  recipients: number;
  member?: Member;
}

/** The frames that change one actor's state after its subscription. */
export type StreamFrame = DeltaFrame | SnapshotFrame | DeletedFrame;

export type ServerFrame =
  | SubscribedFrame
  | StreamFrame
  | PartFrame
  | ResultFrame
  | ErrorFrame
  | PongFrame
  | UnsubscribedFrame
  | PresenceFrame
  | BroadcastFrame
  | SentFrame;

const count = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const requestId = (v: unknown): boolean => v === undefined || typeof v === "string" || typeof v === "number";
const str = (v: unknown): v is string => typeof v === "string";

/** A well-formed presence member. */
export function isMember(v: unknown): v is Member {
  return (
    isObject(v) &&
    str(v.id) &&
    str(v.connection) &&
    (v.principal === undefined || str(v.principal)) &&
    isObject(v.presence) &&
    typeof v.joinedAt === "number" &&
    count(v.rev) &&
    v.rev > 0
  );
}

const presenceEvent = (v: unknown): v is PresenceEvent => v === "join" || v === "update" || v === "leave";

/** `value` as a server frame, or `undefined` when it is not a well-formed one. */
export function checkFrame(value: unknown): ServerFrame | undefined {
  if (!isObject(value)) return undefined;
  const f = value;
  const ok = ((): boolean => {
    switch (f.type) {
      case "subscribed":
        if (!requestId(f.id) || !str(f.actor) || !count(f.epoch) || !count(f.version)) return false;
        if (f.members !== undefined && !(Array.isArray(f.members) && f.members.every(isMember))) return false;
        if (f.memberId !== undefined && !str(f.memberId)) return false;
        return f.resumed === true ? count(f.from) && f.from <= f.version && Array.isArray(f.patch) : "state" in f;
      case "delta":
        return str(f.actor) && count(f.epoch) && count(f.from) && count(f.to) && f.from < f.to && Array.isArray(f.patch);
      case "snapshot":
        return str(f.actor) && count(f.epoch) && count(f.version) && "state" in f;
      case "deleted":
        return str(f.actor) && count(f.epoch) && count(f.version);
      case "part":
        return (
          (str(f.message) || typeof f.message === "number") &&
          count(f.count) &&
          f.count > 0 &&
          count(f.index) &&
          f.index < f.count &&
          str(f.data)
        );
      case "result":
        return requestId(f.id) && "value" in f;
      case "error":
        return requestId(f.id) && str(f.code) && str(f.message) && (f.retryAfterMs === undefined || count(f.retryAfterMs));
      case "presence":
        return str(f.actor) && presenceEvent(f.event) && isMember(f.member);
      case "broadcast":
        return str(f.actor) && str(f.event) && str(f.from) && "payload" in f;
      case "sent":
        return requestId(f.id) && str(f.actor) && count(f.recipients) && (f.member === undefined || isMember(f.member));
      case "pong":
        return requestId(f.id);
      case "unsubscribed":
        return requestId(f.id) && str(f.actor);
      default:
        return false;
    }
  })();
  return ok ? (f as unknown as ServerFrame) : undefined;
}
