// The page: sign in, stay connected, ask (alone or continuing a conversation), watch the
// answer grow, cancel, groups and recent answers. State that must survive a reload (the
// user, the conversation, the answer being watched) lives in localStorage and the URL hash.
import { AnswerView } from "./answer.js";
import { ApiFailure, api, detectPlatformAuth, session, signInUrl } from "./api.js";
import { Live } from "./connection.js";
import { plainError } from "./messages.js";
import { Groups, Recent, el } from "./side.js";

const $ = (id) => document.getElementById(id);
const convo = { turns: [], jobId: null }; // turns: [{role, content, jobId}]
let toastTimer = 0;

function toast(text) {
  clearTimeout(toastTimer);
  $("toast-text").textContent = text;
  $("toast").hidden = !text;
  if (text) toastTimer = setTimeout(() => { $("toast").hidden = true; }, 12000);
}

function report(err) {
  console.warn(err);
  toast(err instanceof ApiFailure ? err.plain : plainError({ message: String(err.message || err) }));
}

function notice(text) {
  $("notice").textContent = text;
}

// --- conversation ------------------------------------------------------------------------

const convoKey = () => `relay.convo.${session.user}`;

function loadConvo() {
  try {
    Object.assign(convo, { turns: [], jobId: null }, JSON.parse(localStorage.getItem(convoKey()) || "{}"));
  } catch {
    Object.assign(convo, { turns: [], jobId: null });
  }
}

function saveConvo() {
  localStorage.setItem(convoKey(), JSON.stringify(convo));
}

function renderTurns() {
  const shown = convo.turns.filter((t) => t.jobId !== answer.jobId);
  $("turns").replaceChildren(...shown.map((t) =>
    el("li", { class: `turn ${t.role}` },
      el("span", { class: "who-said", text: t.role === "user" ? "You" : "Answer" }),
      el("div", { text: t.content }))));
  const asked = convo.turns.find((t) => t.role === "user" && t.jobId && t.jobId === answer.jobId);
  if (asked) $("answer-title").textContent = `You asked: ${asked.content}`;
  $("new-convo").disabled = convo.turns.length === 0 && !answer.jobId;
}

// A conversation answer that ended becomes a turn; one with no answer drops its question.
function settle(job) {
  if (!job || convo.jobId !== job.jobId) return;
  if (job.status === "completed") {
    convo.turns.push({ role: "assistant", content: job.text, jobId: job.jobId });
  } else if (!job.text) {
    convo.turns = convo.turns.filter((t) => t.jobId !== job.jobId);
  } else {
    convo.turns.push({ role: "assistant", content: job.text, jobId: job.jobId });
  }
  convo.jobId = null;
  saveConvo();
}

function newConversation() {
  if (answer.running) return toast("Cancel the running answer or wait for it to end first.");
  Object.assign(convo, { turns: [], jobId: null });
  saveConvo();
  answer.close();
  history.replaceState(null, "", location.pathname);
  renderTurns();
  $("prompt").focus();
}

// --- the answer --------------------------------------------------------------------------

const answer = new AnswerView(
  { text: $("answer"), status: $("status"), metrics: $("metrics"), cancel: $("cancel"), title: $("answer-title") },
  {
    ended: (job) => { settle(job); renderTurns(); recent.load(); },
    error: report,
    changed: () => { $("send").disabled = answer.running; },
  },
);

async function openJob(jobId, title = "") {
  history.replaceState(null, "", `#job=${jobId}`);
  const opening = answer.open(jobId, title);
  renderTurns();
  await opening;
  recent.load();
}

async function ask(ev) {
  ev.preventDefault();
  const prompt = $("prompt").value;
  if (!prompt.trim()) return toast("Write a prompt first.");
  if (answer.running) return toast("An answer is still running: cancel it or wait for it to end.");
  if (answer.job && convo.jobId === answer.jobId) settle(answer.job);
  const body = {};
  const turns = convo.turns.map(({ role, content }) => ({ role, content }));
  if (turns.length) body.messages = [...turns, { role: "user", content: prompt }];
  else body.prompt = prompt;
  const system = $("system").value.trim();
  if (system) body.system = system;
  if ($("maxTokens").value) body.maxTokens = Number($("maxTokens").value);
  if ($("temperature").value && !$("temperature-box").hidden) body.temperature = Number($("temperature").value);
  const target = $("target").value;
  if (target === "connection") {
    if (!live.bound) return toast(plainError({ code: "connection_not_claimed" }));
    body.connectionId = live.connectionId;
  } else if (target.startsWith("group:")) {
    body.groupName = target.slice(6);
  }
  $("send").disabled = true;
  let res;
  try {
    res = await api("POST", "/api/jobs", body, { "Idempotency-Key": crypto.randomUUID() });
  } catch (err) {
    $("send").disabled = false;
    if (err instanceof ApiFailure && err.field === "temperature" && /only temperature/.test(err.message)) {
      $("temperature-box").hidden = true;
      $("temperature-note").hidden = false;
    }
    return report(err);
  }
  toast("");
  convo.turns.push({ role: "user", content: prompt, jobId: res.jobId });
  convo.jobId = res.jobId;
  saveConvo();
  $("prompt").value = "";
  await openJob(res.jobId);
}

async function cancel() {
  if (!answer.running) return;
  try {
    await api("DELETE", `/api/jobs/${answer.jobId}`);
    notice("Cancel requested.");
    await answer.catchUp();
  } catch (err) {
    report(err);
  }
}

// --- live connection, groups, recent answers ---------------------------------------------

const live = new Live({
  state: (s) => { $("conn").dataset.state = s; $("conn").textContent = s; },
  delta: (m) => {
    answer.onDelta(m);
    // For tools and tests that watch what reaches this tab (no effect on the page).
    window.dispatchEvent(new CustomEvent("relay:delta", { detail: m }));
  },
  status: (m) => {
    answer.onStatus(m);
    if (m && m.jobId !== answer.jobId && m.status !== "running") recent.load();
  },
  connected: () => { if (answer.jobId) answer.catchUp(); },
  claimed: (bound) => { $("target").options[1].textContent = bound ? "this tab only" : "this tab only (registering…)"; },
});

const groups = new Groups(
  { list: $("groups"), select: $("target"), invite: $("invite"), inviteLink: $("invite-link"), inviteGroup: $("invite-group") },
  { error: report, notice },
);

const recent = new Recent({ list: $("jobs") }, {
  error: report,
  current: () => answer.jobId,
  open: (j) => {
    const asked = convo.turns.find((t) => t.role === "user" && t.jobId === j.jobId);
    const when = new Date(j.createdAt).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
    openJob(j.jobId, asked ? "" : `Answer from ${when}`);
  },
});

// --- sign-in and start ---------------------------------------------------------------

async function signedIn() {
  $("signin-panel").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = session.name || session.user;
  loadConvo();
  renderTurns();
  await live.start();
  const params = new URLSearchParams(location.hash.slice(1));
  const join = params.get("join") || sessionStorage.getItem("relay.join");
  const invite = params.get("invite") || sessionStorage.getItem("relay.invite");
  sessionStorage.removeItem("relay.join");
  sessionStorage.removeItem("relay.invite");
  if (join) {
    history.replaceState(null, "", location.pathname);
    await groups.join(join, invite);
  } else {
    groups.load();
  }
  const jobId = params.get("job") || convo.jobId;
  if (jobId && /^[0-9a-f]{32}$/.test(jobId)) await openJob(jobId);
  else recent.load();
}

function showSignIn() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("join")) {
    // Keep the invite across the sign-in, and say what it is for.
    sessionStorage.setItem("relay.join", params.get("join"));
    sessionStorage.setItem("relay.invite", params.get("invite") || "");
    notice(`Sign in to join the group ${params.get("join")}.`);
  }
  $("signin-panel").hidden = false;
  $("app").hidden = true;
  $("who").hidden = true;
  $("user").focus();
}

async function signOut() {
  await live.stop();
  if (session.platform) return location.assign("/.auth/logout?post_logout_redirect_uri=/");
  localStorage.removeItem("relay.user");
  session.user = "";
  answer.close();
  history.replaceState(null, "", location.pathname);
  showSignIn();
}

function wire() {
  $("signin").addEventListener("submit", (ev) => {
    ev.preventDefault();
    session.user = $("user").value.trim();
    localStorage.setItem("relay.user", session.user);
    signedIn();
  });
  $("signout").addEventListener("click", signOut);
  $("ask").addEventListener("submit", ask);
  $("prompt").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("ask").requestSubmit();
  });
  $("cancel").addEventListener("click", cancel);
  $("new-convo").addEventListener("click", newConversation);
  $("toast-close").addEventListener("click", () => toast(""));
  $("jobs-refresh").addEventListener("click", () => recent.load());
  $("invite-link").addEventListener("focus", (ev) => ev.target.select());
  $("group-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (await groups.join($("group-name").value.trim())) $("group-name").value = "";
  });
}

async function start() {
  wire();
  if (await detectPlatformAuth()) {
    if (!session.user) return location.assign(signInUrl());
    $("signout").textContent = "Sign out";
    return signedIn();
  }
  session.user = localStorage.getItem("relay.user") || "";
  $("user").value = session.user;
  if (session.user) return signedIn();
  showSignIn();
}

start();
