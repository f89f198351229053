// The SignalR connection: state for people to see, reconnection that never gives up, and
// the tab's claim on its connection (re-made after every reconnect, whose id is new).
/* global signalR */
import { api, identityHeaders, session } from "./api.js";

const RETRY_MS = [0, 1000, 2000, 5000, 10000];
const RESTART_MS = [1000, 2000, 5000, 10000, 30000];

export class Live {
  // handlers: {state(s), delta(m), status(m), connected(), claimed(bound)}
  constructor(handlers) {
    this.on = handlers;
    this.conn = null;
    this.state = "offline";
    this.bound = false; // this connection is claimed: tab-only answers may target it
    this.restarts = 0;
    this.restartTimer = null;
    this.stopped = true;
    window.addEventListener("online", () => { if (this.state === "offline" && !this.stopped) this.start(); });
  }

  get connectionId() {
    return this.conn && this.state === "connected" ? this.conn.connectionId : null;
  }

  setState(s) {
    this.state = s;
    this.on.state(s);
  }

  async start() {
    this.stopped = false;
    clearTimeout(this.restartTimer);
    if (this.conn) await this.conn.stop().catch(() => {});
    const conn = new signalR.HubConnectionBuilder()
      .withUrl(`${location.origin}/api`, { headers: identityHeaders(), withCredentials: false })
      .withAutomaticReconnect(RETRY_MS)
      .configureLogging(signalR.LogLevel.None)
      .build();
    conn.on("delta", (m) => this.on.delta(m));
    conn.on("status", (m) => this.on.status(m));
    conn.on("claim", (m) => this.finishClaim(conn, m));
    conn.onreconnecting(() => { this.setBound(false); this.setState("reconnecting"); });
    conn.onreconnected(() => this.opened(conn));
    conn.onclose(() => {
      if (this.conn !== conn) return;
      this.setBound(false);
      this.setState("offline");
      this.scheduleRestart();
    });
    this.conn = conn;
    this.setBound(false);
    this.setState("connecting");
    try {
      await conn.start();
    } catch {
      if (this.conn !== conn) return;
      this.setState("offline");
      this.scheduleRestart();
      return;
    }
    if (this.conn === conn) this.opened(conn);
  }

  async stop() {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    const conn = this.conn;
    this.conn = null;
    if (conn) await conn.stop().catch(() => {});
    this.setBound(false);
    this.setState("offline");
  }

  scheduleRestart() {
    if (this.stopped) return;
    const delay = RESTART_MS[Math.min(this.restarts, RESTART_MS.length - 1)];
    this.restarts += 1;
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => this.start(), delay);
  }

  opened(conn) {
    this.restarts = 0;
    this.setState("connected");
    this.claim(conn);
    this.on.connected();
  }

  setBound(bound) {
    this.bound = bound;
    this.on.claimed(bound);
  }

  // A connection id proves nothing: the app sends a nonce to it, and the tab echoes it back.
  async claim(conn) {
    const id = conn.connectionId;
    if (!id || (!session.user && !session.platform)) return;
    this.claimPending = id;
    try {
      const res = await api("POST", `/api/connections/${encodeURIComponent(id)}/claim`);
      if (res && res.status === "bound" && conn === this.conn) this.setBound(true);
    } catch (err) {
      console.warn("claim", err.code || err);
    }
  }

  async finishClaim(conn, { nonce }) {
    const id = conn.connectionId;
    // Only a nonce this tab asked for: anyone may start a claim on our connection, and
    // echoing theirs would only earn a 403.
    if (conn !== this.conn || !id || typeof nonce !== "string" || this.claimPending !== id) return;
    this.claimPending = null;
    try {
      await api("POST", `/api/connections/${encodeURIComponent(id)}/claim`, { nonce });
      if (conn === this.conn && conn.connectionId === id) this.setBound(true);
    } catch (err) {
      console.warn("claim", err.code || err);
    }
  }
}
