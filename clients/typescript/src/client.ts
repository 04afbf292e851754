// Owns the connection: opening the WebSocket (token as subprotocols), reconnecting with
// back-off, routing server frames to requests, subscriptions (state, members, broadcasts) and
// part reassembly, re-sending unanswered requests and resubscribing (with `since`, re-joining
// with the last presence) after a reconnect, and the public API.

import { backoffDelay, defaultBackoff, type BackoffOptions } from "./backoff.js";
import { systemClock, type Clock } from "./clock.js";
import { fromServerError, StatecastError } from "./errors.js";
import { Emitter, throwLater } from "./events.js";
import { PartAssembler } from "./parts.js";
import { MemberList, type Member, type MembersChange } from "./presence.js";
import {
  checkFrame,
  type BroadcastFrame,
  type ErrorFrame,
  type PresenceFrame,
  type RequestId,
  type SentFrame,
  type ServerFrame,
  type StreamFrame,
  type SubscribedFrame,
} from "./protocol.js";
import { Replica, type Change, type Outcome } from "./replica.js";

export type ConnectionState = "connecting" | "open" | "reconnecting" | "closed";

/** Any WebSocket class with the browser's shape (the global one, `ws`, a test fake). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;

export interface ConnectOptions {
  /** Sent as the subprotocols `["bearer", token]` (what a browser can send on the handshake). */
  token?: string;
  /** The WebSocket class; defaults to `globalThis.WebSocket` (Node 20 needs one passed, e.g. from `ws`). */
  WebSocket?: WebSocketConstructor;
  backoff?: Partial<BackoffOptions>;
  /** Default timeout of a request (call, workflow, ping), in ms. Default 10 000. */
  callTimeoutMs?: number;
  /** How long the parts of one large message may take, in ms. Default 5 000. */
  partTimeoutMs?: number;
  /** Interval of keep-alive pings while open (API Gateway drops idle sockets after 10 min); 0 disables. Default 300 000. */
  keepAliveMs?: number;
  /** Timer source (tests pass a fake). */
  clock?: Clock;
  /** Random numbers in [0, 1) for back-off jitter (tests pass a fixed one). */
  random?: () => number;
}

export type StateListener<S = unknown> = (state: S, change: Change) => void;

export interface SubscribeOptions {
  /** JSON Pointers: hold only the projection of the actor's state on these paths. */
  paths?: string[];
  /** Called when the server refuses the subscription (e.g. `forbidden`, `not_found`). */
  onError?: (error: StatecastError) => void;
  /** Join the actor's presence with this metadata (a JSON object of at most 1 KB): the handle's `members` then lists everyone, this connection too. */
  presence?: Record<string, unknown>;
  /** Follow the members without joining. */
  members?: boolean;
}

/** An ephemeral message a subscriber of `actor` sent; `from` is its connection (see `Member.connection`). */
export interface BroadcastMessage {
  actor: string;
  event: string;
  payload: unknown;
  from: string;
}

export type MembersListener = (members: readonly Member[], change: MembersChange) => void;
export type BroadcastListener = (message: BroadcastMessage) => void;

/** The server's answer to a broadcast or presence update: how many subscribers it was posted to. */
export interface Sent {
  actor: string;
  recipients: number;
}

/** The answer to a presence update: `member` is this connection's membership with the new metadata. */
export interface PresenceSent extends Sent {
  member: Member;
}

export interface BroadcastOptions extends RequestOptions {
  /** Leave this connection out of the recipients. */
  excludeSelf?: boolean;
}

/**
 * What `subscribe` returns: call it (or `unsubscribe()`) to remove the listener (the last one
 * unsubscribes); it also follows the actor's presence and broadcasts.
 */
export interface SubscriptionHandle {
  (): void;
  unsubscribe(): void;
  readonly actor: string;
  /** The members (when joined with `presence` or asked with `members: true`), oldest join first. */
  readonly members: readonly Member[];
  /** This connection's member id while joined (a new one after every re-join). */
  readonly memberId: string | undefined;
  /** Calls `listener` whenever the member list changes; returns the function that removes it. */
  onMembers(listener: MembersListener): () => void;
  /** Calls `listener` with every broadcast on the actor; returns the function that removes it. */
  onBroadcast(listener: BroadcastListener): () => void;
  /** `client.updatePresence(actor, presence)`. */
  updatePresence(presence: Record<string, unknown>, options?: RequestOptions): Promise<PresenceSent>;
  /** `client.broadcast(actor, event, payload)`. */
  broadcast(event: string, payload?: unknown, options?: BroadcastOptions): Promise<Sent>;
}

export interface RequestOptions {
  timeoutMs?: number;
}

export interface CallOptions extends RequestOptions {
  /** Defaults to a random one; the same key is re-sent with every retry of this call. */
  idempotencyKey?: string;
}

export interface WorkflowOptions extends RequestOptions {
  /** Defaults to a random one, which makes the start safe to re-send after a reconnect. */
  workflowId?: string;
}

export interface WorkflowStarted {
  workflowId: string;
  /** The progress actor to subscribe to: `workflow/<id>`. */
  actor: string;
  created: boolean;
}

export interface ClientEvents {
  [event: string]: unknown[];
  state: [ConnectionState];
  /** Every frame received, parsed (parts, and then the frame they reassemble to). */
  frame: [Record<string, unknown>];
  /** Every frame sent. */
  send: [Record<string, unknown>];
  /** Errors not tied to a request: refused subscriptions, server errors without an id, listener exceptions. */
  error: [StatecastError | Error];
  /** Every broadcast received, whichever actor it is on. */
  broadcast: [BroadcastMessage];
}

interface Socket {
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: unknown) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

interface PendingRequest {
  frame: Record<string, unknown>;
  /** Re-sent after a reconnect; otherwise rejected with `disconnected` when the socket drops. */
  resend: boolean;
  resolve(frame: ServerFrame): void;
  reject(error: StatecastError): void;
  /** Runs from the moment the frame goes out on an open socket (re-armed when re-sent). */
  timer: unknown;
  timeoutMs: number;
}

interface Subscription {
  actor: string;
  paths: string[] | undefined;
  replica: Replica;
  listeners: Set<StateListener<never>>;
  onError: ((error: StatecastError) => void) | undefined;
  /** The metadata to join with (the last the server accepted); `undefined`: not joining. */
  presence: Record<string, unknown> | undefined;
  /** Follow the members (joining, or `members: true`). */
  followsMembers: boolean;
  members: MemberList;
  /** The list being rebuilt for the awaited reply: the frames since the subscribe was sent. */
  nextMembers: MemberList | undefined;
  memberId: string | undefined;
  memberListeners: Set<MembersListener>;
  broadcastListeners: Set<BroadcastListener>;
}

/** API Gateway's WebSocket message limit: a larger frame would close the socket. */
const MAX_MESSAGE_BYTES = 128 * 1024;

export function connect(url: string, options: ConnectOptions = {}): Client {
  return new Client(url, options);
}

export class Client extends Emitter<ClientEvents> {
  private current: ConnectionState = "connecting";
  private socket: Socket | undefined;
  private attempt = 0;
  private reconnectTimer: unknown;
  private keepAliveTimer: unknown;
  private nextId = 1;
  private readonly requests = new Map<RequestId, PendingRequest>();
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly subscribeIds = new Map<RequestId, string>();
  private readonly parts: PartAssembler;
  private readonly clock: Clock;
  private readonly backoff: BackoffOptions;
  private readonly WebSocketClass: WebSocketConstructor;

  constructor(
    readonly url: string,
    private readonly options: ConnectOptions = {},
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.backoff = { ...defaultBackoff, ...options.backoff };
    const WebSocketClass = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (WebSocketClass === undefined) throw new Error("no WebSocket class: pass one as `options.WebSocket`");
    this.WebSocketClass = WebSocketClass;
    this.parts = new PartAssembler(this.clock, options.partTimeoutMs ?? 5_000, {
      complete: (text) => this.receive(text),
      lost: (actor, reason) => this.partLost(actor, reason),
    });
    this.open();
  }

  /** The connection state: `connecting` (first attempt), `open`, `reconnecting`, `closed` (for good). */
  get state(): ConnectionState {
    return this.current;
  }

  /**
   * Follows `actor`: `listener` gets its state (a new frozen object on every change) and what
   * changed. With `presence` the connection joins the actor's presence (re-joining with the
   * last accepted metadata after every reconnect); with it or `members: true` the handle
   * lists the members. One subscription per actor: more listeners share it (same `paths`,
   * and `presence`/`members` only on the first). Returns the handle; calling it removes
   * `listener` (the last one unsubscribes).
   */
  subscribe<S = unknown>(actor: string, listener: StateListener<S>, options: SubscribeOptions = {}): SubscriptionHandle {
    if (this.current === "closed") throw new StatecastError("closed", "the client is closed");
    const paths = options.paths === undefined ? undefined : [...options.paths];
    let sub = this.subscriptions.get(actor);
    if (sub === undefined) {
      sub = {
        actor,
        paths,
        replica: new Replica(paths !== undefined),
        listeners: new Set(),
        onError: options.onError,
        presence: options.presence === undefined ? undefined : { ...options.presence },
        followsMembers: options.presence !== undefined || options.members === true,
        members: new MemberList(),
        nextMembers: undefined,
        memberId: undefined,
        memberListeners: new Set(),
        broadcastListeners: new Set(),
      };
      this.subscriptions.set(actor, sub);
      this.resubscribe(sub, false);
    } else if (JSON.stringify(sub.paths) !== JSON.stringify(paths)) {
      throw new StatecastError("bad_request", `already subscribed to ${actor} with other paths`);
    } else if (options.presence !== undefined || (options.members === true && !sub.followsMembers)) {
      throw new StatecastError("bad_request", `already subscribed to ${actor}: join when first subscribing, change the metadata with updatePresence`);
    } else if (sub.replica.epoch !== undefined) {
      // Late joiners get the current state at once.
      const { replica } = sub;
      const change: Change = { kind: "snapshot", epoch: replica.epoch ?? 0, version: replica.version };
      const state = replica.state;
      queueMicrotask(() => {
        if (sub?.listeners.has(listener as StateListener<never>)) this.notify(listener as StateListener, state, change);
      });
    }
    const owner = sub;
    owner.listeners.add(listener as StateListener<never>);
    const added = { members: new Set<MembersListener>(), broadcasts: new Set<BroadcastListener>() };
    const unsubscribe = (): void => {
      for (const l of added.members) owner.memberListeners.delete(l);
      for (const l of added.broadcasts) owner.broadcastListeners.delete(l);
      if (!owner.listeners.delete(listener as StateListener<never>) || owner.listeners.size > 0) return;
      if (this.subscriptions.get(actor) !== owner) return;
      this.subscriptions.delete(actor);
      if (owner.replica.awaiting !== undefined) this.subscribeIds.delete(owner.replica.awaiting);
      this.send({ action: "unsubscribe", id: this.nextId++, actor });
    };
    const listen = <L>(mine: Set<L>, shared: Set<L>, l: L): (() => void) => {
      if (!owner.listeners.has(listener as StateListener<never>)) return () => {};
      mine.add(l);
      shared.add(l);
      return () => {
        mine.delete(l);
        shared.delete(l);
      };
    };
    const methods = {
      unsubscribe,
      onMembers: (l: MembersListener) => listen(added.members, owner.memberListeners, l),
      onBroadcast: (l: BroadcastListener) => listen(added.broadcasts, owner.broadcastListeners, l),
      updatePresence: (presence: Record<string, unknown>, options?: RequestOptions) => this.updatePresence(actor, presence, options),
      broadcast: (event: string, payload?: unknown, options?: BroadcastOptions) => this.broadcast(actor, event, payload, options),
    };
    return Object.defineProperties(Object.assign(unsubscribe, methods), {
      actor: { value: actor, enumerable: true },
      members: { get: () => owner.members.list(), enumerable: true },
      memberId: { get: () => owner.memberId, enumerable: true },
    }) as SubscriptionHandle;
  }

  /**
   * Replaces this connection's presence metadata in `actor` (it must have joined); the others
   * get an `update`. Kept for re-joins once the server accepted it. Never queued or re-sent:
   * rejects with `disconnected` unless open.
   */
  async updatePresence(actor: string, presence: Record<string, unknown>, options: RequestOptions = {}): Promise<PresenceSent> {
    const reply = (await this.request({ action: "presence.update", actor, presence }, options.timeoutMs, false)) as SentFrame;
    const sub = this.subscriptions.get(actor);
    if (sub?.presence !== undefined) sub.presence = { ...presence };
    return { actor: reply.actor, recipients: reply.recipients, member: reply.member as Member };
  }

  /**
   * Posts `payload` under `event` (1 to 64 characters) to every subscriber of `actor` (this
   * connection must be one; `excludeSelf` leaves it out); nothing is stored. Resolves with
   * the number of recipients. Never queued or re-sent: rejects with `disconnected` unless
   * open; over the rate limit with `rate_limited` (see `retryAfterMs`).
   */
  async broadcast(actor: string, event: string, payload: unknown = null, options: BroadcastOptions = {}): Promise<Sent> {
    const frame: Record<string, unknown> = { action: "broadcast", actor, event, payload };
    if (options.excludeSelf === true) frame.excludeSelf = true;
    const reply = (await this.request(frame, options.timeoutMs, false)) as SentFrame;
    return { actor: reply.actor, recipients: reply.recipients };
  }

  /** Runs `method` of `actor`; resolves with its return value. Re-sent (same idempotency key) after a reconnect. */
  async call(actor: string, method: string, args?: Record<string, unknown>, options: CallOptions = {}): Promise<unknown> {
    const frame: Record<string, unknown> = { action: "call", actor, method };
    if (args !== undefined) frame.args = args;
    frame.idempotencyKey = options.idempotencyKey ?? randomId();
    const reply = await this.request(frame, options.timeoutMs);
    return reply.type === "result" ? reply.value : undefined;
  }

  /** Starts workflow `workflow`; follow it by subscribing to the returned `actor`. */
  async startWorkflow(workflow: string, input: unknown = {}, options: WorkflowOptions = {}): Promise<WorkflowStarted> {
    const workflowId = options.workflowId ?? randomId();
    const reply = await this.request({ action: "workflow.start", workflow, input, workflowId }, options.timeoutMs);
    return (reply.type === "result" ? reply.value : undefined) as WorkflowStarted;
  }

  /** The progress state of a workflow instance, read once. */
  async workflowStatus(workflowId: string, options: RequestOptions = {}): Promise<unknown> {
    const reply = await this.request({ action: "workflow.status", workflowId }, options.timeoutMs);
    return reply.type === "result" ? reply.value : undefined;
  }

  /** Cancels a running workflow instance (its completed steps are compensated). */
  async cancelWorkflow(workflowId: string, options: RequestOptions = {}): Promise<unknown> {
    const reply = await this.request({ action: "workflow.cancel", workflowId }, options.timeoutMs);
    return reply.type === "result" ? reply.value : undefined;
  }

  /** Round trip to the server. */
  async ping(options: RequestOptions = {}): Promise<void> {
    await this.request({ action: "ping" }, options.timeoutMs);
  }

  /** Closes the connection for good: pending requests reject with `closed`. */
  close(): void {
    if (this.current === "closed") return;
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined) {
      detach(socket);
      try {
        socket.close(1000, "closed by client");
      } catch {
        // already closing
      }
    }
    this.shutDown("the client was closed");
  }

  // ---- connection ----

  private open(): void {
    let socket: Socket;
    try {
      const token = this.options.token;
      socket = (token === undefined ? new this.WebSocketClass(this.url) : new this.WebSocketClass(this.url, ["bearer", token])) as Socket;
    } catch (error) {
      this.emit("error", error instanceof Error ? error : new Error(String(error)));
      this.socketGone();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket === socket) this.opened();
    };
    socket.onmessage = (event) => {
      if (this.socket === socket) this.receive(event.data);
    };
    // Browsers fire `close` after `error`; either one ends this socket.
    socket.onclose = socket.onerror = () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      detach(socket);
      this.socketGone();
    };
  }

  private opened(): void {
    this.attempt = 0;
    this.setState("open");
    for (const sub of this.subscriptions.values()) this.resubscribe(sub, true);
    for (const [id, request] of this.requests) this.transmit(id, request);
    this.scheduleKeepAlive();
  }

  private socketGone(): void {
    this.clock.clearTimeout(this.keepAliveTimer);
    for (const [id, request] of this.requests) {
      // A request to re-send waits, untimed, for the next open socket.
      this.clock.clearTimeout(request.timer);
      request.timer = undefined;
      if (request.resend) continue;
      this.requests.delete(id);
      this.clock.clearTimeout(request.timer);
      request.reject(new StatecastError("disconnected", `the connection dropped before the reply to ${String(request.frame.action)}`));
    }
    this.parts.reset();
    this.subscribeIds.clear();
    for (const sub of this.subscriptions.values()) sub.replica.awaiting = undefined;
    if (this.current === "closed") return;
    if (this.attempt >= this.backoff.maxAttempts) {
      this.shutDown(`could not connect after ${this.attempt} attempts`);
      return;
    }
    this.setState("reconnecting");
    const delay = backoffDelay(this.attempt, this.backoff, this.options.random);
    this.attempt += 1;
    this.reconnectTimer = this.clock.setTimeout(() => this.open(), delay);
  }

  private shutDown(reason: string): void {
    this.clock.clearTimeout(this.reconnectTimer);
    this.clock.clearTimeout(this.keepAliveTimer);
    this.parts.reset();
    this.setState("closed");
    const requests = [...this.requests.values()];
    this.requests.clear();
    this.subscriptions.clear();
    this.subscribeIds.clear();
    for (const request of requests) {
      this.clock.clearTimeout(request.timer);
      request.reject(new StatecastError("closed", reason));
    }
  }

  private scheduleKeepAlive(): void {
    const every = this.options.keepAliveMs ?? 300_000;
    if (every <= 0) return;
    this.keepAliveTimer = this.clock.setTimeout(() => {
      if (this.current !== "open") return;
      this.send({ action: "ping", id: this.nextId++ });
      this.scheduleKeepAlive();
    }, every);
  }

  private setState(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.emit("state", state);
  }

  private send(frame: Record<string, unknown>): void {
    if (this.current !== "open" || this.socket === undefined) return; // re-sent on the next open
    this.emit("send", frame);
    try {
      this.socket.send(JSON.stringify(frame));
    } catch {
      // the socket is closing: its close event reconnects
    }
  }

  // ---- requests ----

  private request(fields: Record<string, unknown>, timeoutMs = this.options.callTimeoutMs ?? 10_000, resend = true): Promise<ServerFrame> {
    if (this.current === "closed") return Promise.reject(new StatecastError("closed", "the client is closed"));
    if (!resend && this.current !== "open") {
      return Promise.reject(new StatecastError("disconnected", `not connected: ${String(fields.action)} is not queued`));
    }
    const id = this.nextId++;
    const frame = { action: fields.action, id, ...fields };
    const bytes = new TextEncoder().encode(JSON.stringify(frame)).length;
    if (bytes > MAX_MESSAGE_BYTES) {
      return Promise.reject(new StatecastError("too_large", `the ${String(fields.action)} frame is ${bytes} bytes; the limit is ${MAX_MESSAGE_BYTES}`));
    }
    return new Promise<ServerFrame>((resolve, reject) => {
      const request: PendingRequest = { frame, resend, resolve, reject, timer: undefined, timeoutMs };
      this.requests.set(id, request);
      this.transmit(id, request);
    });
  }

  /**
   * Sends a request if the socket is open and times its reply from then: a request made while
   * reconnecting is queued, untimed, until the next open (a server that is down for a while
   * does not turn a queued edit into a timeout).
   */
  private transmit(id: RequestId, request: PendingRequest): void {
    if (this.current !== "open" || this.socket === undefined) return;
    this.clock.clearTimeout(request.timer);
    request.timer = this.clock.setTimeout(() => {
      this.requests.delete(id);
      request.reject(new StatecastError("timeout", `no reply to ${String(request.frame.action)} within ${request.timeoutMs} ms`));
    }, request.timeoutMs);
    this.send(request.frame);
  }

  private settle(id: RequestId | undefined, frame: ServerFrame): boolean {
    const request = id === undefined ? undefined : this.requests.get(id);
    if (id === undefined || request === undefined) return false;
    this.requests.delete(id);
    this.clock.clearTimeout(request.timer);
    if (frame.type === "error") request.reject(fromServerError(frame));
    else request.resolve(frame);
    return true;
  }

  // ---- frames ----

  private receive(data: unknown): void {
    const text =
      typeof data === "string"
        ? data
        : data instanceof ArrayBuffer || ArrayBuffer.isView(data)
          ? new TextDecoder().decode(data)
          : undefined;
    if (text === undefined) return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) return;
    this.emit("frame", value as Record<string, unknown>);
    const frame = checkFrame(value);
    if (frame !== undefined) {
      this.dispatch(frame);
    } else if (!("type" in value) && "message" in value) {
      // API Gateway's own reply, e.g. {"message":"Internal server error","connectionId":…,"requestId":…}
      this.emit("error", fromServerError(value));
    }
  }

  private dispatch(frame: ServerFrame): void {
    switch (frame.type) {
      case "part":
        return this.parts.receive(frame);
      case "subscribed":
        this.subscribed(frame);
        return this.parts.superseded(frame.actor);
      case "snapshot":
        this.stream(frame);
        return this.parts.superseded(frame.actor);
      case "delta":
      case "deleted":
        return this.stream(frame);
      case "error":
        return this.errorFrame(frame);
      case "presence":
        return this.presence(frame);
      case "broadcast":
        return this.broadcastReceived(frame);
      case "sent":
        // A presence update's reply carries this connection's membership: the others got it as `update`.
        if (frame.member !== undefined) this.presence({ type: "presence", actor: frame.actor, event: "update", member: frame.member });
        this.settle(frame.id, frame);
        return;
      case "result":
      case "pong":
      case "unsubscribed":
        this.settle(frame.id, frame);
        return;
    }
  }

  private subscribed(frame: SubscribedFrame): void {
    const sub = this.subscriptions.get(frame.actor);
    const awaiting = sub?.replica.awaiting;
    if (sub === undefined || awaiting === undefined || (frame.id !== undefined && frame.id !== awaiting)) return;
    this.subscribeIds.delete(awaiting);
    const outcome = sub.replica.subscribed(frame);
    if (sub.followsMembers) {
      // The reply's list, plus what frames said since the subscribe was sent (they may come first).
      const members = sub.nextMembers ?? sub.members.fork();
      members.merge(frame.members ?? []);
      sub.members = members;
      sub.nextMembers = undefined;
      sub.memberId = frame.memberId;
      this.membersChanged(sub, { kind: "sync" });
    }
    this.deliver(sub, outcome);
  }

  private presence(frame: PresenceFrame): void {
    const sub = this.subscriptions.get(frame.actor);
    if (sub === undefined || !sub.followsMembers) return;
    sub.nextMembers?.apply(frame.event, frame.member);
    if (sub.members.apply(frame.event, frame.member)) this.membersChanged(sub, { kind: frame.event, member: frame.member });
  }

  private membersChanged(sub: Subscription, change: MembersChange): void {
    const members = sub.members.list();
    for (const listener of [...sub.memberListeners]) {
      if (sub.memberListeners.has(listener)) this.notify(listener, members, change);
    }
  }

  private broadcastReceived(frame: BroadcastFrame): void {
    const message: BroadcastMessage = { actor: frame.actor, event: frame.event, payload: frame.payload, from: frame.from };
    const sub = this.subscriptions.get(frame.actor);
    for (const listener of [...(sub?.broadcastListeners ?? [])]) {
      if (sub?.broadcastListeners.has(listener)) this.notify(listener, message);
    }
    this.emit("broadcast", message);
  }

  private stream(frame: StreamFrame): void {
    const sub = this.subscriptions.get(frame.actor);
    if (sub !== undefined) this.deliver(sub, sub.replica.receive(frame));
  }

  private errorFrame(frame: ErrorFrame): void {
    if (this.settle(frame.id, frame)) return;
    const error = fromServerError(frame);
    const actor = frame.id === undefined ? undefined : this.subscribeIds.get(frame.id);
    const sub = actor === undefined ? undefined : this.subscriptions.get(actor);
    if (sub !== undefined && frame.id !== undefined) {
      this.subscribeIds.delete(frame.id);
      sub.replica.awaiting = undefined;
      sub.nextMembers = undefined;
      if (sub.onError !== undefined) this.notify(sub.onError, error);
    }
    this.emit("error", error);
  }

  /**
   * Parts of a message were lost: resubscribe its actor (or every actor when it is unknown).
   * Not when a newer state message superseded it, unless that actor still awaits a reply
   * (the lost message may have been the reply).
   */
  private partLost(actor: string | undefined, reason: "timeout" | "superseded" | "foreign"): void {
    for (const sub of this.subscriptions.values()) {
      if (actor !== undefined && sub.actor !== actor) continue;
      if (reason === "superseded" && sub.replica.awaiting === undefined) continue;
      this.resubscribe(sub, true);
    }
  }

  private deliver(sub: Subscription, outcome: Outcome): void {
    for (const { state, change } of outcome.updates) {
      for (const listener of [...sub.listeners]) {
        if (sub.listeners.has(listener)) this.notify(listener as StateListener, state, change);
      }
    }
    if (outcome.resync !== "none" && this.subscriptions.get(sub.actor) === sub) {
      this.resubscribe(sub, outcome.resync === "since");
    }
  }

  /**
   * Sends `subscribe` for `sub` (with `since` when asked and something is held, and its
   * presence); frames are kept until the reply, presence frames in the list being rebuilt.
   */
  private resubscribe(sub: Subscription, withSince: boolean): void {
    if (this.current !== "open") return; // every subscription is sent on open
    if (sub.replica.awaiting !== undefined) this.subscribeIds.delete(sub.replica.awaiting);
    const id = this.nextId++;
    sub.replica.awaiting = id;
    this.subscribeIds.set(id, sub.actor);
    const frame: Record<string, unknown> = { action: "subscribe", id, actor: sub.actor };
    const since = withSince ? sub.replica.since() : undefined;
    if (since !== undefined) frame.since = since;
    if (sub.paths !== undefined) frame.paths = sub.paths;
    // Every subscribe re-joins (a new member): the reply rebuilds the list.
    if (sub.presence !== undefined) frame.presence = sub.presence;
    else if (sub.followsMembers) frame.members = true;
    if (sub.followsMembers) sub.nextMembers = sub.members.fork();
    this.send(frame);
  }

  private notify<A extends unknown[]>(listener: (...args: A) => void, ...args: A): void {
    try {
      listener(...args);
    } catch (error) {
      if (this.hasListeners("error")) this.emit("error", error instanceof Error ? error : new Error(String(error)));
      else throwLater(error);
    }
  }
}

function detach(socket: Socket): void {
  socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
}

/** A random id: a UUID where available (secure contexts, Node), else 128 random bits in hex. */
export function randomId(): string {
  const crypto = (globalThis as { crypto?: Partial<Crypto> }).crypto;
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof crypto?.getRandomValues === "function") crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
