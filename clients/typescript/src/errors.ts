// Owns the error type every failed request rejects with: `StatecastError`, carrying the
// server's error code (or a client-side one such as `timeout`), its message, where the
// server named one the request id to quote when reporting an `internal` error, and for
// `rate_limited` the server's retry hint.

/** Codes sent by the server in `error` frames. */
export type ServerErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "rate_limited"
  | "internal";

/** Codes raised by the client itself. */
export type ClientErrorCode =
  /** No reply within the request's timeout. */
  | "timeout"
  /** `client.close()` was called, or the client gave up reconnecting. */
  | "closed"
  /** The connection was not open, or dropped before the reply, for a request that is never re-sent (`broadcast`, `updatePresence`). */
  | "disconnected";

export type ErrorCode = ServerErrorCode | ClientErrorCode;

export class StatecastError extends Error {
  override readonly name = "StatecastError";
  /** The server's error code, or `timeout` / `closed` from the client. Unknown server codes pass through as sent. */
  readonly code: ErrorCode | (string & {});
  /** The server-side request id, when the server named one (internal and throttling errors). */
  readonly requestId: string | undefined;
  /** For `rate_limited`: how long until a retry may succeed, in ms (when the server said). */
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode | (string & {}), message: string, requestId?: string, retryAfterMs?: number) {
    super(message);
    this.code = code;
    this.requestId = requestId;
    this.retryAfterMs = retryAfterMs;
  }
}

/** The error for a server `error` frame (or API Gateway's own `{message, requestId}` reply). */
export function fromServerError(frame: { code?: unknown; message?: unknown; requestId?: unknown; retryAfterMs?: unknown }): StatecastError {
  const code = typeof frame.code === "string" ? frame.code : "internal";
  const message = typeof frame.message === "string" ? frame.message : code;
  let requestId = typeof frame.requestId === "string" ? frame.requestId : undefined;
  // The server quotes it in the text: "internal error; request id 9f2c…".
  requestId ??= /request id ([\w.:@=+/-]+)/.exec(message)?.[1];
  const retryAfterMs = typeof frame.retryAfterMs === "number" ? frame.retryAfterMs : undefined;
  return new StatecastError(code, message, requestId, retryAfterMs);
}
