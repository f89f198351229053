// The web page: sign in, connect, ask, watch the answer grow, groups, recent answers.
// Delta handling follows the contract in contract.js; everything else is plain DOM.
import { JobStream } from "./contract.js";

const $ = (id) => document.getElementById(id);
const state = {
  user: localStorage.getItem("relay.user") || "",
  platform: false, // true when App Service Authentication signs people in
  conn: null,
  connectionBound: false,
  job: null, // JobStream of the answer on screen
  turns: [], // conversation so far: [{role, content}]
  gapTimer: null,
};

const MESSAGES = {
  rate_limited: "You are sending too fast. Wait a moment and try again.",
  invalid_request: "That request is not valid",
  not_a_member: "You are not a member of that group.",
  connection_not_claimed: "This tab is not ready for tab-only answers yet; try again in a second.",
  unauthenticated: "Sign in first.",
  unavailable: "The service is unavailable right now. Try again shortly.",
  invite_required: "That group is invite-only: ask its owner for an invite link.",
  invalid_invite: "That invite is not valid (expired, used or for another group).",
  payload_too_large: "That prompt is too long.",
};

function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = !text;
  if (text) setTimeout(() => { if (el.textContent === text) el.hidden = true; }, 8000);
}

class ApiFailure extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_" + status;
    this.field = err.field;
  }
  get plain() {
    const base = MESSAGES[this.code];
    if (this.code === "invalid_request") return `${base}: ${this.field ? this.field + ": " : ""}${this.message}`;
    return base || this.message;
  }
}

async function api(method, path, body, extraHeaders = {}) {
  const headers = { ...extraHeaders };
  if (!state.platform && state.user) headers["x-ms-client-principal-id"] = state.user;
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiFailure(0, { error: { code: "unavailable", message: "network error" } });
  }
  const data = await res.json().catch(() => null);
  if (res.status === 401 && state.platform) location.assign("/.auth/login/aad?post_login_redirect_uri=/");
  if (!res.ok) throw new ApiFailure(res.status, data);
  return data;
}

function report(err) {
  console.warn(err);
  toast(err instanceof ApiFailure ? err.plain : String(err.message || err));
}

// --- connection ---------------------------------------------------------------------

function setConn(s) {
  const el = $("conn");
  el.dataset.state = s;
  el.textContent = s;
}

async function connect() {
  if (state.conn) await state.conn.stop().catch(() => {});
  if (!state.user && !state.platform) return setConn("offline");
  const headers = state.platform ? {} : { "x-ms-client-principal-id": state.user };
  const conn = new signalR.HubConnectionBuilder()
    .withUrl(location.origin + "/api", { headers })
    .withAutomaticReconnect([0, 2000, 5000, 10000, 30000])
    .configureLogging(signalR.LogLevel.Warning)
    .build();
  conn.on("delta", (m) => onDelta(m));
  conn.on("status", (m) => onStatus(m));
  conn.on("claim", (m) => finishClaim(m));
  conn.onreconnecting(() => { setConn("reconnecting"); state.connectionBound = false; });
  conn.onreconnected(() => { setConn("connected"); claimConnection(); catchUp(); });
  conn.onclose(() => setConn("offline"));
  state.conn = conn;
  setConn("connecting");
  try {
    await conn.start();
    setConn("connected");
    claimConnection();
    catchUp();
  } catch (err) {
    setConn("offline");
    report(err);
    setTimeout(connect, 5000);
  }
}

// A connection id proves nothing: the app sends a nonce to it, and we echo it back.
async function claimConnection() {
  const id = state.conn && state.conn.connectionId;
  if (!id) return;
  try { await api("POST", `/api/connections/${encodeURIComponent(id)}/claim`); } catch (err) { console.warn(err); }
}

async function finishClaim({ nonce }) {
  const id = state.conn && state.conn.connectionId;
  try {
    await api("POST", `/api/connections/${encodeURIComponent(id)}/claim`, { nonce });
    state.connectionBound = true;
  } catch (err) { report(err); }
}

// --- the answer on screen -------------------------------------------------------------

function render() {
  const job = state.job;
  $("answer").textContent = job ? job.text : "";
  $("answer").setAttribute("aria-busy", job && !job.finished ? "true" : "false");
  $("cancel").disabled = !job || ["completed", "failed", "canceled"].includes(job.status);
}

function onDelta(msg) {
  const job = state.job;
  if (!job || msg.jobId !== job.jobId) return;
  if (job.apply(msg)) render();
  if (job.hasGap()) scheduleGapFill();
}

function onStatus(msg) {
  const job = state.job;
  if (!job || msg.jobId !== job.jobId) { if (msg.status !== "running") loadJobs(); return; }
  job.applyStatus(msg);
  if (job.hasGap()) scheduleGapFill();
  if (["completed", "failed", "canceled"].includes(msg.status)) refreshStatus();
  else showStatus({ status: msg.status, attempt: msg.attempt });
  render();
}

function scheduleGapFill() {
  if (state.gapTimer) return;
  state.gapTimer = setTimeout(() => { state.gapTimer = null; catchUp(); }, 250);
}

// Fetch every batch after the last one applied (reload, reconnect, gaps).
async function catchUp() {
  const job = state.job;
  if (!job) return;
  try {
    const st = await api("GET", `/api/jobs/${job.jobId}`);
    job.applyStatus({ jobId: job.jobId, status: st.status, attempt: st.attempt, lastSeq: st.lastSeq });
    let more = true;
    while (more && job.attempt > 0) {
      const ev = await api("GET", `/api/jobs/${job.jobId}/events?after=${job.seq}&attempt=${job.attempt}`);
      for (const e of ev.events) job.apply({ jobId: job.jobId, ...e });
      more = ev.more;
    }
    showStatus(st);
    render();
  } catch (err) { report(err); }
}

async function refreshStatus() {
  await catchUp();
  const job = state.job;
  if (job && job.status === "completed" && state.turns.at(-1)?.role !== "assistant" && $("continue").checked) {
    state.turns.push({ role: "assistant", content: job.text });
  }
  loadJobs();
}

function showStatus(st) {
  const bits = [`Status: ${st.status}`];
  if (st.attempt > 1) bits.push(`attempt ${st.attempt}`);
  if (st.placeInLine) bits.push(`place in line: ${st.placeInLine}`);
  const m = st.metrics || {};
  if (m.ttftMs != null) bits.push(`first token ${m.ttftMs} ms`);
  if (m.durationMs != null && st.status === "completed") bits.push(`took ${(m.durationMs / 1000).toFixed(1)} s`);
  if (st.usage) bits.push(`${st.usage.completion_tokens ?? st.usage.completionTokens ?? "?"} tokens`);
  if (m.messages != null) bits.push(`${m.messages} messages`);
  if (st.delivery === "degraded") bits.push("live delivery degraded (caught up from the record)");
  if (st.error) bits.push(`error: ${st.error.message || st.error.code}`);
  $("status").textContent = bits.join(" · ");
}

async function openJob(jobId) {
  state.job = new JobStream(jobId);
  history.replaceState(null, "", `#job=${jobId}`);
  render();
  await catchUp();
}

// --- asking -------------------------------------------------------------------------

async function ask(ev) {
  ev.preventDefault();
  const prompt = $("prompt").value.trim();
  if (!prompt) return;
  const body = {};
  const system = $("system").value.trim();
  if ($("continue").checked && state.turns.length) {
    body.messages = [...state.turns, { role: "user", content: prompt }];
  } else {
    state.turns = [];
    body.prompt = prompt;
  }
  if (system) body.system = system;
  if ($("maxTokens").value) body.maxTokens = Number($("maxTokens").value);
  if ($("temperature").value) body.temperature = Number($("temperature").value);
  const target = $("target").value;
  if (target === "connection") {
    if (!state.connectionBound) return toast(MESSAGES.connection_not_claimed);
    body.connectionId = state.conn.connectionId;
  } else if (target.startsWith("group:")) {
    body.groupName = target.slice(6);
  }
  $("send").disabled = true;
  try {
    const res = await api("POST", "/api/jobs", body, { "Idempotency-Key": crypto.randomUUID() });
    state.turns.push({ role: "user", content: prompt });
    renderTurns();
    $("prompt").value = "";
    await openJob(res.jobId);
    loadJobs();
  } catch (err) { report(err); } finally { $("send").disabled = false; }
}

function renderTurns() {
  const box = $("turns");
  box.replaceChildren(...state.turns.map((t) => {
    const div = document.createElement("div");
    div.className = "turn";
    div.textContent = `${t.role}: ${t.content}`;
    return div;
  }));
}

async function cancel() {
  if (!state.job) return;
  try {
    const res = await api("DELETE", `/api/jobs/${state.job.jobId}`);
    showStatus({ status: res.status === "canceled" ? "canceled" : "canceling" });
  } catch (err) { report(err); }
}

// --- groups and recent answers ----------------------------------------------------------

async function loadGroups() {
  if (!state.user && !state.platform) return;
  try {
    const { groups } = await api("GET", "/api/groups");
    const select = $("target");
    [...select.options].filter((o) => o.value.startsWith("group:")).forEach((o) => o.remove());
    const list = $("groups");
    list.replaceChildren();
    for (const g of groups) {
      select.add(new Option(`group: ${g.group}`, `group:${g.group}`));
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = g.group + (g.owner === state.user ? " (owner)" : "");
      li.append(name);
      if (g.owner === state.user) li.append(button("Copy invite link", () => invite(g.group)));
      li.append(button("Members", () => members(g.group)));
      li.append(button(g.owner === state.user ? "Delete" : "Leave", () => leave(g)));
      list.append(li);
    }
  } catch (err) { report(err); }
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

async function joinGroup(name, invite) {
  try {
    await api("PUT", `/api/groups/${encodeURIComponent(name)}/members/me`, invite ? { invite } : undefined);
    await loadGroups();
  } catch (err) { report(err); }
}

async function invite(group) {
  try {
    const res = await api("POST", `/api/groups/${encodeURIComponent(group)}/invites`, { ttlSeconds: 86400 });
    const link = `${location.origin}/#join=${encodeURIComponent(group)}&invite=${encodeURIComponent(res.invite)}`;
    await navigator.clipboard?.writeText(link).catch(() => {});
    toast(`Invite link copied: ${link}`);
  } catch (err) { report(err); }
}

async function members(group) {
  try {
    const res = await api("GET", `/api/groups/${encodeURIComponent(group)}`);
    toast(`${group}: ${res.members.map((m) => m.userId).join(", ")}`);
  } catch (err) { report(err); }
}

async function leave(g) {
  const path = g.owner === state.user
    ? `/api/groups/${encodeURIComponent(g.group)}`
    : `/api/groups/${encodeURIComponent(g.group)}/members/me`;
  try { await api("DELETE", path); await loadGroups(); } catch (err) { report(err); }
}

async function loadJobs() {
  if (!state.user && !state.platform) return;
  try {
    const { jobs } = await api("GET", "/api/jobs?limit=10");
    $("jobs").replaceChildren(...jobs.map((j) => {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.innerHTML = `<small></small>`;
      label.firstChild.textContent = `${new Date(j.createdAt).toLocaleTimeString()} · ${j.status}`;
      li.append(label, button("Open", () => openJob(j.jobId)));
      if (["completed", "failed", "canceled"].includes(j.status)) {
        li.append(button("Erase", async () => {
          try { await api("DELETE", `/api/jobs/${j.jobId}/data`); loadJobs(); } catch (err) { report(err); }
        }));
      }
      return li;
    }));
  } catch (err) { report(err); }
}

// --- start ------------------------------------------------------------------------------

async function detectPlatformAuth() {
  try {
    const res = await fetch("/.auth/me");
    if (!res.ok) return;
    const [me] = await res.json();
    if (me && me.user_id) { state.platform = true; state.user = me.user_id; }
  } catch { /* local development: no platform sign-in */ }
}

async function start() {
  await detectPlatformAuth();
  $("user").value = state.user;
  if (state.platform) $("signin").hidden = true;
  $("signin").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    state.user = $("user").value.trim();
    localStorage.setItem("relay.user", state.user);
    await connect();
    loadGroups();
    loadJobs();
  });
  $("ask").addEventListener("submit", ask);
  $("cancel").addEventListener("click", cancel);
  $("group-form").addEventListener("submit", (ev) => { ev.preventDefault(); joinGroup($("group-name").value.trim()); });
  const params = new URLSearchParams(location.hash.slice(1));
  if (state.user || state.platform) {
    await connect();
    if (params.get("join")) {
      await joinGroup(params.get("join"), params.get("invite"));
      history.replaceState(null, "", location.pathname);
    }
    loadGroups();
    loadJobs();
    if (params.get("job")) openJob(params.get("job"));
  }
}

start();
