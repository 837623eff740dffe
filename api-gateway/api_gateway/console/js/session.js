// The console session: log in, find it again after a reload, switch project, log out.
// The token itself stays in an HttpOnly cookie; the page knows only what the token
// stands for (user, project, roles, catalog, expiry) and its CSRF token.

import { request, setCsrf } from "./api.js";

const MARK = { "X-Stackling-Console": "1" };

export class Session {
  constructor(body) {
    const token = body.token;
    this.user = token.user;
    this.project = token.project;
    this.roles = (token.roles || []).map((r) => r.name);
    this.catalog = token.catalog || [];
    this.expiresAt = new Date(token.expires_at);
    this.csrf = body.csrf_token;
    setCsrf(this.csrf);
  }

  get isAdmin() {
    return this.roles.includes("admin");
  }

  get canWrite() {
    return this.roles.includes("member") || this.isAdmin;
  }

  /** Is a service in this project's catalog (a cloud may run without one)? */
  has(type) {
    return this.catalog.some((s) => s.type === type);
  }

  /** Milliseconds until the token expires. */
  remaining() {
    return this.expiresAt.getTime() - Date.now();
  }
}

export async function login(username, password, project) {
  const data = await request("POST", "/console/session", { json: { username, password, project }, headers: MARK, quiet401: true });
  return new Session(data.session);
}

/** The session the cookie holds, or null. */
export async function restore() {
  try {
    const data = await request("GET", "/console/session", { headers: MARK, quiet401: true });
    return new Session(data.session);
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function switchProject(projectId) {
  const data = await request("PUT", "/console/session", { json: { project_id: projectId } });
  return new Session(data.session);
}

export async function logout() {
  try {
    await request("DELETE", "/console/session", { quiet401: true });
  } finally {
    setCsrf(null);
  }
}
