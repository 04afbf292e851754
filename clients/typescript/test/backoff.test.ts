// Tests the full-jitter back-off bound and errors' request id parsing.

import assert from "node:assert/strict";
import { test } from "node:test";
import { backoffDelay } from "../src/backoff.js";
import { fromServerError } from "../src/errors.js";

test("delay = random(0, min(cap, base·2^attempt))", () => {
  const options = { baseMs: 100, capMs: 5_000, maxAttempts: Infinity };
  assert.deepEqual([0, 1, 2, 3, 6, 60].map((a) => backoffDelay(a, options, () => 0.999999)), [99, 199, 399, 799, 4_999, 4_999]);
  assert.equal(backoffDelay(5, options, () => 0), 0);
});

test("the request id comes from a field or from the server's message", () => {
  assert.equal(fromServerError({ code: "internal", message: "x", requestId: "r1" }).requestId, "r1");
  assert.equal(fromServerError({ code: "rate_limited", message: "the service is busy; retry later (request id ab-12)" }).requestId, "ab-12");
  assert.equal(fromServerError({ code: "conflict", message: "taken" }).requestId, undefined);
});
