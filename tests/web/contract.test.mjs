// The page's stream contract (web/contract.js) under reordering, duplicates, gaps and retries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { JobStream } from "../../web/contract.js";

const d = (seq, text, attempt = 1) => ({ jobId: "j", seq, attempt, text });

test("applies batches in seq order and drops duplicates", () => {
  const s = new JobStream("j");
  for (const m of [d(2, "b"), d(1, "a"), d(1, "a"), d(3, "c"), d(2, "b")]) s.apply(m);
  assert.equal(s.text, "abc");
  assert.equal(s.seq, 3);
  assert.equal(s.hasGap(), false);
});

test("holds early batches and reports the gap", () => {
  const s = new JobStream("j");
  s.apply(d(1, "a"));
  s.apply(d(3, "c"));
  assert.equal(s.text, "a");
  assert.equal(s.hasGap(), true);
  s.apply(d(2, "b"));
  assert.equal(s.text, "abc");
  assert.equal(s.hasGap(), false);
});

test("a higher attempt resets, a lower one is ignored", () => {
  const s = new JobStream("j");
  s.apply(d(1, "old "));
  s.apply(d(2, "text"));
  s.apply(d(1, "new", 2));
  assert.equal(s.text, "new");
  s.apply(d(3, "late old", 1));
  assert.equal(s.text, "new");
  assert.equal(s.attempt, 2);
});

test("a known lastSeq beyond what was applied is a gap; finished only when complete", () => {
  const s = new JobStream("j");
  s.apply(d(1, "a"));
  s.applyStatus({ jobId: "j", status: "completed", attempt: 1, lastSeq: 2 });
  assert.equal(s.hasGap(), true);
  assert.equal(s.finished, false);
  s.apply(d(2, "b"));
  assert.equal(s.finished, true);
  assert.equal(s.text, "ab");
});

test("ignores other jobs and malformed messages", () => {
  const s = new JobStream("j");
  assert.equal(s.apply({ jobId: "k", seq: 1, attempt: 1, text: "x" }), false);
  assert.equal(s.apply({ jobId: "j", seq: "1", attempt: 1, text: "x" }), false);
  assert.equal(s.text, "");
});
