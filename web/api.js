// The HTTP API: one fetch wrapper, one failure type, the caller's identity.
//
// Locally (AUTH_MODE=dev) the page names its user with x-ms-client-principal-id on every call.
// In Azure the platform signs people in (App Service Authentication): the header is never
// sent (the platform would strip it anyway), and a 401 sends the browser to the sign-in page.
import { plainError } from "./messages.js";

export const session = { user: "", name: "", platform: false };

export class ApiFailure extends Error {
  constructor(status, body, retryAfter = null) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || `http_${status}`;
    this.field = err.field || null;
    this.retryAfter = retryAfter;
  }

  get plain() {
    return plainError(this);
  }
}

export function identityHeaders() {
  return !session.platform && session.user ? { "x-ms-client-principal-id": session.user } : {};
}

export function signInUrl() {
  const back = location.pathname + location.hash;
  return `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(back)}`;
}

export async function api(method, path, body, extraHeaders = {}) {
  const headers = { ...identityHeaders(), ...extraHeaders };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiFailure(0, { error: { code: "unavailable", message: "network error" } });
  }
  const data = await res.json().catch(() => null);
  if (res.status === 401 && session.platform) location.assign(signInUrl());
  if (!res.ok) {
    const retry = Number(res.headers.get("retry-after")) || null;
    throw new ApiFailure(res.status, data, retry);
  }
  return data;
}

// The platform's sign-in, if there is one: /.auth/me answers only where App Service
// Authentication is on (locally it is a 404, and the page uses its dev sign-in).
export async function detectPlatformAuth() {
  try {
    const res = await fetch("/.auth/me", { credentials: "same-origin" });
    if (!res.ok) return false;
    const [me] = await res.json();
    session.platform = true;
    if (me && me.user_id) {
      session.user = me.user_id;
      const claims = me.user_claims || [];
      const name = claims.find((c) => c.typ === "name" || c.typ === "preferred_username");
      session.name = (name && name.val) || me.user_id;
    }
    return true;
  } catch {
    return false;
  }
}
