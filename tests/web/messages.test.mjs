// Plain-word errors (web/messages.js): every failure the page can meet reads as a sentence.
import { test } from "node:test";
import assert from "node:assert/strict";
import { plainError, plainJobError, plainRetry } from "../../web/messages.js";

test("rate limits say why and when to retry", () => {
  const text = plainError({ status: 429, code: "rate_limited", message: "at most 3 jobs per minute", retryAfter: 42 });
  assert.match(text, /^Rate limited/);
  assert.match(text, /at most 3 jobs per minute/);
  assert.match(text, /Try again in 42 seconds\./);
  assert.match(plainError({ status: 429 }), /^Rate limited/);
});

test("invalid input names the field in words", () => {
  const prompt = plainError({ status: 400, code: "invalid_request", field: "prompt", message: "must not be empty" });
  assert.equal(prompt, "Invalid prompt: The prompt must not be empty.");
  const turn = plainError({ status: 400, code: "invalid_request", field: "messages[2].content", message: "is too long" });
  assert.match(turn, /Turn 3 of the conversation is too long/);
});

test("membership, availability and sign-in failures", () => {
  assert.match(plainError({ status: 403, code: "not_a_member" }), /not a member of that group/);
  assert.match(plainError({ status: 0, code: "unavailable" }), /^Service unavailable/);
  assert.match(plainError({ status: 503, code: "http_503" }), /^Service unavailable/);
  assert.match(plainError({ status: 401, code: "unauthenticated" }), /not signed in/);
  assert.match(plainError({ status: 403, code: "invalid_invite" }), /invite link is not valid/);
});

test("job failures and retries", () => {
  assert.match(plainJobError({ code: "content_filtered" }), /content filter/);
  assert.match(plainJobError({ code: "llm_rate_limited" }), /rate limited/);
  assert.match(plainJobError(null), /went wrong/);
  assert.equal(plainRetry(2, "llm_unavailable").startsWith("Retrying (attempt 2) after: The model service"), true);
});
