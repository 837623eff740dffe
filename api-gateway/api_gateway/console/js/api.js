// Calls to the cloud's public APIs, as the logged-in user.
//
//   const {servers} = await api.get("/compute/v2.1/servers/detail");
//   await api.post(`/compute/v2.1/servers/${id}/action`, {"os-stop": null});
//   try { ... } catch (e) { e.message }   // the message the API gave, as it gave it
//
// Requests go to this page's origin. The session cookie (HttpOnly: no script reads it)
// authorizes them together with the X-CSRF-Token header, which only this page knows.

let csrfToken = null;
let onSessionEnd = () => {};

export function setCsrf(token) {
  csrfToken = token;
}

/** Called when an API answers 401: the token expired or was revoked. */
export function setSessionEndHandler(fn) {
  onSessionEnd = fn;
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/**
 * The message of an OpenStack error body, whatever the service's shape:
 * nova/cinder {"itemNotFound": {"message"}}, neutron {"NeutronError": {"message"}},
 * keystone {"error": {"message"}}, glance {"message"}, or FastAPI's {"detail"}.
 */
export function faultMessage(status, body, text) {
  if (body && typeof body === "object") {
    if (typeof body.message === "string" && body.message) return body.message;
    for (const value of Object.values(body)) {
      if (value && typeof value === "object" && typeof value.message === "string") {
        return value.message;
      }
    }
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail) && body.detail[0] && body.detail[0].msg) {
      return body.detail.map((d) => d.msg).join("; ");
    }
  }
  if (text && text.length < 300) return text;
  return `HTTP ${status}`;
}

export async function request(method, path, { json, body, headers = {}, quiet401 } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (csrfToken) init.headers["X-CSRF-Token"] = csrfToken;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, `The gateway did not answer: ${err.message}`, null);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    if (response.status === 401 && !quiet401) onSessionEnd();
    throw new ApiError(response.status, faultMessage(response.status, data, text), data);
  }
  return data;
}

export const api = {
  get: (path, opts) => request("GET", path, opts),
  post: (path, json, opts) => request("POST", path, { ...opts, json }),
  put: (path, json, opts) => request("PUT", path, { ...opts, json }),
  patch: (path, json, opts) => request("PATCH", path, { ...opts, json }),
  del: (path, opts) => request("DELETE", path, opts),
};
