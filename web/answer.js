// The answer on screen: one job, followed per the stream contract (contract.js).
//
// Live batches are applied as they come; the events endpoint fills gaps and catches up
// after a reload or reconnect (the merge is by seq, so the two never double a batch).
// While a job runs, a quiet spell of WATCH_MS triggers a catch-up too, so a missed final
// status message cannot leave the page waiting forever.
import { api } from "./api.js";
import { JobStream } from "./contract.js";
import { plainJobError, plainRetry } from "./messages.js";

const TERMINAL = ["completed", "failed", "canceled"];
const WATCH_MS = 2000;
const GAP_MS = 250;
const EARLY_MAX = 200;

export class AnswerView {
  // els: {text, status, metrics, cancel, title}; hooks: {ended(job), error(err), changed()}
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.job = null;
    this.info = null; // the last status endpoint answer
    this.received = 0; // delta messages that reached this tab live
    this.frame = 0;
    this.gapTimer = null;
    this.watchTimer = null;
    this.lastHeard = 0;
    this.catching = null;
    this.retryNote = "";
    this.endedFor = null;
    this.early = []; // deltas of jobs not on screen yet (a job can start before POST returns)
  }

  get jobId() {
    return this.job ? this.job.jobId : null;
  }

  get running() {
    return Boolean(this.job) && !TERMINAL.includes(this.job.status);
  }

  async open(jobId, title = "") {
    this.job = new JobStream(jobId);
    this.info = null;
    this.received = 0;
    this.retryNote = "";
    this.endedFor = null;
    this.els.title.textContent = title;
    this.els.metrics.textContent = "";
    this.showStatus("Waiting for the answer…", "queued");
    this.render();
    this.watch();
    for (const m of this.early.splice(0)) if (m.jobId === jobId) this.onDelta(m);
    await this.catchUp();
  }

  close() {
    this.job = null;
    clearInterval(this.watchTimer);
    this.els.title.textContent = "";
    this.els.metrics.textContent = "";
    this.showStatus("No answer yet. Ask something above.", "idle");
    this.render();
  }

  onDelta(msg) {
    const job = this.job;
    if (!msg) return;
    if (!job || msg.jobId !== job.jobId) {
      this.early.push(msg);
      if (this.early.length > EARLY_MAX) this.early.shift();
      return;
    }
    this.received += 1;
    this.lastHeard = Date.now();
    if (job.apply(msg)) this.schedule();
    if (job.status === null || job.status === "queued") {
      job.status = "running";
      this.showStatus("Answering…", "running");
    }
    if (job.hasGap()) this.scheduleGapFill();
  }

  onStatus(msg) {
    const job = this.job;
    if (!job || !msg || msg.jobId !== job.jobId) return;
    this.lastHeard = Date.now();
    const before = job.attempt;
    job.applyStatus(msg);
    if (msg.status === "running" && msg.attempt > 1) {
      this.retryNote = plainRetry(msg.attempt, msg.error);
    }
    if (job.attempt !== before) this.schedule();
    if (TERMINAL.includes(msg.status)) this.catchUp();
    else this.showProgress();
    if (job.hasGap()) this.scheduleGapFill();
  }

  scheduleGapFill() {
    if (this.gapTimer) return;
    this.gapTimer = setTimeout(() => { this.gapTimer = null; this.catchUp(); }, GAP_MS);
  }

  watch() {
    clearInterval(this.watchTimer);
    this.watchTimer = setInterval(() => {
      if (!this.running) return clearInterval(this.watchTimer);
      if (Date.now() - this.lastHeard >= WATCH_MS) this.catchUp();
    }, WATCH_MS / 2);
  }

  // Status, then every batch after the last one applied. One catch-up at a time; a call
  // while one runs waits for it and then runs again (it may have news the first missed).
  async catchUp() {
    const job = this.job;
    if (!job) return;
    if (this.catching) {
      await this.catching.catch(() => {});
      if (this.job !== job) return;
    }
    this.catching = this._catchUp(job);
    try {
      await this.catching;
    } catch (err) {
      if (this.job === job) this.hooks.error(err);
    } finally {
      this.catching = null;
    }
  }

  async _catchUp(job) {
    this.lastHeard = Date.now();
    const st = await api("GET", `/api/jobs/${job.jobId}`);
    if (this.job !== job) return;
    this.info = st;
    job.applyStatus({ jobId: job.jobId, status: st.status, attempt: st.attempt, lastSeq: st.lastSeq });
    let more = job.attempt > 0;
    while (more && this.job === job) {
      const q = `after=${job.seq}&attempt=${job.attempt}`;
      const ev = await api("GET", `/api/jobs/${job.jobId}/events?${q}`);
      if (ev.attempt !== job.attempt) break; // a newer attempt began: the next pass gets it
      for (const e of ev.events) job.apply({ jobId: job.jobId, seq: e.seq, attempt: e.attempt, text: e.text });
      more = ev.more && ev.events.length > 0;
    }
    this.schedule();
    this.showProgress();
    if (job.finished && this.endedFor !== job.jobId) {
      this.endedFor = job.jobId;
      this.hooks.ended(job, st);
    }
  }

  // Text changes are drawn once per frame, however many batches arrived in it.
  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  }

  render() {
    const job = this.job;
    const text = job ? job.text : "";
    if (this.els.text.textContent !== text) this.els.text.textContent = text;
    this.els.text.dataset.streaming = this.running ? "true" : "false";
    this.els.text.setAttribute("aria-busy", this.running ? "true" : "false");
    this.els.cancel.disabled = !this.running;
    this.hooks.changed();
  }

  showStatus(text, kind) {
    this.els.status.textContent = text;
    this.els.status.dataset.kind = kind;
  }

  showProgress() {
    const job = this.job;
    if (!job) return;
    const st = this.info || {};
    const status = job.status || st.status || "queued";
    if (status === "queued") {
      const place = st.placeInLine ? ` (place in line: ${st.placeInLine})` : "";
      this.showStatus(`Queued${place}…`, "queued");
    } else if (status === "running") {
      this.showStatus(this.retryNote || (st.cancelRequested ? "Canceling…" : "Answering…"), "running");
    } else if (status === "completed") {
      this.showStatus(job.finished ? "Completed" : "Completed; fetching the rest…", "completed");
    } else if (status === "canceled") {
      this.showStatus("Canceled. The text so far is kept.", "canceled");
    } else if (status === "failed") {
      this.showStatus(`Failed: ${plainJobError(st.error)}`, "failed");
    }
    this.els.metrics.textContent = TERMINAL.includes(status) ? this.metricsText(st) : "";
    this.render();
  }

  metricsText(st) {
    const m = st.metrics || {};
    const bits = [];
    if (m.ttftMs != null) bits.push(`first token ${fmtMs(m.ttftMs)}`);
    if (m.durationMs != null) bits.push(`took ${fmtMs(m.durationMs)}`);
    const u = st.usage || {};
    const tokens = u.completionTokens ?? u.completion_tokens;
    if (tokens != null) bits.push(`${tokens} tokens`);
    if (m.messages != null) bits.push(`${m.messages} messages sent`);
    bits.push(`${this.received} received live`);
    if (st.attempt > 1) bits.push(`${st.attempt} attempts`);
    if (st.delivery === "degraded") bits.push("live delivery degraded");
    return bits.join(" · ");
  }
}

function fmtMs(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}
