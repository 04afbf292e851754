// Owns the public surface of @statecast/client.

export { connect, Client, randomId } from "./client.js";
export type {
  BroadcastListener,
  BroadcastMessage,
  BroadcastOptions,
  CallOptions,
  ClientEvents,
  ConnectionState,
  ConnectOptions,
  MembersListener,
  PresenceSent,
  RequestOptions,
  Sent,
  StateListener,
  SubscribeOptions,
  SubscriptionHandle,
  WebSocketConstructor,
  WorkflowOptions,
  WorkflowStarted,
} from "./client.js";
export type { Change } from "./replica.js";
export type { Member, MembersChange, PresenceEvent } from "./presence.js";
export { StatecastError } from "./errors.js";
export type { ClientErrorCode, ErrorCode, ServerErrorCode } from "./errors.js";
export { applyPatch, PatchError } from "./patch.js";
export type { Operation } from "./patch.js";
export { escapeToken, formatPointer, parsePointer } from "./pointer.js";
export type { Json } from "./json.js";
export type { BackoffOptions } from "./backoff.js";
export type { Clock } from "./clock.js";
export type { ServerFrame, Since } from "./protocol.js";
