// The client side of the stream contract, with no I/O (the page and the tests share it).
//
// Batches arrive as `delta` {jobId, seq, attempt, text}. SignalR does not guarantee
// order and runs deliver at least once, so a client:
//   - keeps only the highest attempt it has seen, and resets its text when a higher one begins;
//   - applies batches in seq order, dropping duplicates (seq already applied);
//   - holds batches that arrive early, and asks for the gap from the events endpoint;
//   - ends with exactly the final text once it has every seq up to the final lastSeq.

export class JobStream {
  constructor(jobId) {
    this.jobId = jobId;
    this.attempt = 0;
    this.seq = 0; // last seq applied, in order
    this.parts = [];
    this.pending = new Map(); // seq -> text, arrived ahead of a gap
    this.status = null;
    this.lastSeq = null; // known from a status message or the status endpoint
  }

  get text() {
    return this.parts.join("");
  }

  // Apply one batch; returns true if the visible text changed.
  apply({ jobId, seq, attempt, text }) {
    if (jobId !== this.jobId || !Number.isInteger(seq) || !Number.isInteger(attempt)) return false;
    if (attempt < this.attempt) return false;
    if (attempt > this.attempt) this.reset(attempt);
    if (seq <= this.seq || this.pending.has(seq)) return false;
    this.pending.set(seq, String(text ?? ""));
    let changed = false;
    while (this.pending.has(this.seq + 1)) {
      this.seq += 1;
      this.parts.push(this.pending.get(this.seq));
      this.pending.delete(this.seq);
      changed = true;
    }
    return changed;
  }

  reset(attempt) {
    this.attempt = attempt;
    this.seq = 0;
    this.parts = [];
    this.pending.clear();
    this.lastSeq = null;
  }

  // A `status` message or the status endpoint's answer.
  applyStatus({ jobId, status, attempt, lastSeq }) {
    if (jobId !== undefined && jobId !== this.jobId) return;
    if (Number.isInteger(attempt) && attempt > this.attempt) this.reset(attempt);
    if (Number.isInteger(attempt) && attempt < this.attempt) return;
    this.status = status;
    if (Number.isInteger(lastSeq)) this.lastSeq = lastSeq;
  }

  // True when batches are missing: a gap before held batches, or behind a known lastSeq.
  hasGap() {
    if (this.pending.size > 0) return true;
    return this.lastSeq !== null && this.seq < this.lastSeq;
  }

  get finished() {
    return ["completed", "failed", "canceled"].includes(this.status) && !this.hasGap();
  }
}
