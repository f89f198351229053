// The side panels: the caller's groups (create, invite, join, members, leave) and recent answers.
import { api, session } from "./api.js";

const TERMINAL = ["completed", "failed", "canceled"];
const enc = encodeURIComponent;

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export function inviteLink(group, token) {
  return `${location.origin}${location.pathname}#join=${enc(group)}&invite=${enc(token)}`;
}

export class Groups {
  // els: {list, select, invite, inviteLink}; hooks: {error(err), notice(text)}
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.groups = [];
    this.open = new Set(); // groups whose member list is shown
  }

  async load() {
    try {
      const { groups } = await api("GET", "/api/groups");
      this.groups = groups.sort((a, b) => a.group.localeCompare(b.group));
    } catch (err) {
      return this.hooks.error(err);
    }
    this.renderSelect();
    await this.render();
  }

  renderSelect() {
    const select = this.els.select;
    const chosen = select.value;
    [...select.options].filter((o) => o.value.startsWith("group:")).forEach((o) => o.remove());
    for (const g of this.groups) select.add(new Option(`group ${g.group}`, `group:${g.group}`));
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "user";
  }

  async render() {
    const items = [];
    for (const g of this.groups) {
      const owner = g.owner === session.user;
      const li = el("li", { "data-group": g.group },
        el("div", { class: "item-head" },
          el("strong", { text: g.group }),
          el("small", { text: owner ? "you own it" : `owner ${g.owner || "?"}` })),
        el("div", { class: "actions" },
          owner ? el("button", { type: "button", onclick: () => this.invite(g.group), text: "Invite link" }) : null,
          el("button", { type: "button", "aria-expanded": String(this.open.has(g.group)),
            onclick: () => this.toggleMembers(g.group), text: "Members" }),
          el("button", { type: "button", class: "quiet", onclick: () => this.leave(g),
            text: owner ? "Delete" : "Leave" })));
      if (this.open.has(g.group)) li.append(await this.membersList(g.group));
      items.push(li);
    }
    if (!items.length) items.push(el("li", { class: "empty", text: "No groups yet. Create one, or open an invite link." }));
    this.els.list.replaceChildren(...items);
  }

  async membersList(group) {
    try {
      const res = await api("GET", `/api/groups/${enc(group)}`);
      const names = res.members.map((m) => m.userId + (m.userId === session.user ? " (you)" : ""));
      return el("ul", { class: "members", "aria-label": `Members of ${group}` },
        ...names.map((n) => el("li", { text: n })));
    } catch (err) {
      this.hooks.error(err);
      return el("p", { class: "empty", text: "Members unavailable." });
    }
  }

  async toggleMembers(group) {
    if (this.open.has(group)) this.open.delete(group);
    else this.open.add(group);
    await this.render();
  }

  // Create the group (joining it when it exists and we hold an invite, or are a member).
  async join(group, invite = null) {
    try {
      const res = await api("PUT", `/api/groups/${enc(group)}/members/me`, invite ? { invite } : undefined);
      this.hooks.notice(res.result === "created" ? `Group ${group} created.` : `You joined ${group}.`);
      await this.load();
      return true;
    } catch (err) {
      this.hooks.error(err);
      return false;
    }
  }

  async invite(group) {
    try {
      const res = await api("POST", `/api/groups/${enc(group)}/invites`, { ttlSeconds: 86400 });
      const link = inviteLink(group, res.invite);
      this.els.inviteLink.value = link;
      this.els.invite.hidden = false;
      this.els.inviteGroup.textContent = group;
      this.els.inviteLink.focus();
      this.els.inviteLink.select();
      const copied = await navigator.clipboard?.writeText(link).then(() => true, () => false);
      this.hooks.notice(copied ? `Invite link for ${group} copied. It works for 24 hours.`
        : `Invite link for ${group} ready: copy it from the box.`);
    } catch (err) {
      this.hooks.error(err);
    }
  }

  async leave(g) {
    const owner = g.owner === session.user;
    const path = owner ? `/api/groups/${enc(g.group)}` : `/api/groups/${enc(g.group)}/members/me`;
    try {
      await api("DELETE", path);
      this.open.delete(g.group);
      this.hooks.notice(owner ? `Group ${g.group} deleted.` : `You left ${g.group}.`);
      await this.load();
    } catch (err) {
      this.hooks.error(err);
    }
  }
}

export class Recent {
  // els: {list}; hooks: {open(job), error(err), current() -> jobId}
  constructor(els, hooks) {
    this.els = els;
    this.hooks = hooks;
    this.loads = 0; // a slower, older answer must not overwrite a newer list
  }

  async load() {
    const mine = ++this.loads;
    let jobs;
    try {
      ({ jobs } = await api("GET", "/api/jobs?limit=10"));
    } catch (err) {
      return this.hooks.error(err);
    }
    if (mine !== this.loads) return;
    const current = this.hooks.current();
    const items = jobs.map((j) => {
      const when = new Date(j.createdAt).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
      const where = j.target.kind === "group" ? `group ${j.target.id}`
        : j.target.kind === "connection" ? "one tab" : "you";
      return el("li", { "data-job": j.jobId, class: j.jobId === current ? "current" : "" },
        el("div", { class: "item-head" },
          el("span", { class: `badge ${j.status}`, text: j.erased ? "erased" : j.status }),
          el("small", { text: `${when} · to ${where}` })),
        el("div", { class: "actions" },
          el("button", { type: "button", onclick: () => this.hooks.open(j), text: "Open" }),
          TERMINAL.includes(j.status) && !j.erased
            ? el("button", { type: "button", class: "quiet", onclick: () => this.erase(j), text: "Erase" })
            : null));
    });
    if (!items.length) items.push(el("li", { class: "empty", text: "Nothing yet." }));
    this.els.list.replaceChildren(...items);
  }

  async erase(j) {
    try {
      await api("DELETE", `/api/jobs/${j.jobId}/data`);
    } catch (err) {
      this.hooks.error(err);
    }
    await this.load();
  }
}
