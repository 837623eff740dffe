// The console's shell: login, the header (project switch, live status, logout), the
// navigation and the page in view (#/servers, #/topology, ...).

import { api, setSessionEndHandler } from "./api.js";
import { h, fill } from "./dom.js";
import { LiveEvents } from "./events.js";
import { login, logout, restore, switchProject } from "./session.js";
import { errorLine } from "./ui.js";
import { PAGES } from "./pages/index.js";

const root = document.getElementById("app");
let state = null; // {session, live, page: {dispose}, expiryTimer}

function loginView(notice) {
  const err = errorLine();
  if (notice) err.show(notice);
  const user = h("input", { id: "login-user", name: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "login-password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const project = h("input", { id: "login-project", name: "project", autocomplete: "off", placeholder: "your default project" });
  const button = h("button", { type: "submit", class: "primary" }, "Log in");
  const form = h(
    "form",
    { class: "login", "data-form": "login" },
    h("h1", null, "Stackling"),
    h("div", { class: "field" }, h("label", { for: "login-user" }, "User"), user),
    h("div", { class: "field" }, h("label", { for: "login-password" }, "Password"), pass),
    h("div", { class: "field" }, h("label", { for: "login-project" }, "Project"), project),
    button,
    err.el,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    err.clear();
    button.disabled = true;
    try {
      const session = await login(user.value, pass.value, project.value.trim());
      pass.value = "";
      await start(session);
    } catch (e) {
      err.show(e.message);
    } finally {
      button.disabled = false;
    }
  });
  fill(root, h("main", { class: "login-page" }, form));
  user.focus();
}

function end(notice) {
  if (!state) return;
  const { live, page, expiryTimer } = state;
  state = null;
  clearTimeout(expiryTimer);
  if (page && page.dispose) page.dispose();
  live.stop();
  loginView(notice);
}

async function doLogout() {
  try {
    await logout();
  } finally {
    end("You have logged out.");
  }
}

function projectSwitcher(session) {
  const err = h("span", { class: "error inline", role: "alert", hidden: true });
  const select = h("select", { id: "project-switch", "aria-label": "Project" });
  // The projects the user has a role on, listed again each time the list is opened.
  const list = async () => {
    try {
      const { projects } = await api.get("/identity/v3/auth/projects");
      const others = projects.filter((p) => p.id !== session.project.id).sort((a, b) => a.name.localeCompare(b.name));
      fill(select, h("option", { value: session.project.id, selected: true }, session.project.name), others.map((p) => h("option", { value: p.id }, p.name)));
    } catch {
      // Listing one's projects may be refused; the current one is still shown.
    }
  };
  select.appendChild(h("option", { value: session.project.id, selected: true }, session.project.name));
  list();
  select.addEventListener("focus", list);
  select.addEventListener("change", async () => {
    try {
      const next = await switchProject(select.value);
      state.live.stop();
      clearTimeout(state.expiryTimer);
      if (state.page && state.page.dispose) state.page.dispose();
      state = null;
      await start(next);
    } catch (e) {
      select.value = session.project.id;
      err.hidden = false;
      fill(err, e.message);
    }
  });
  return h("span", { class: "project" }, select, err);
}

async function start(session) {
  // The page is drawn at once; the event stream opens as soon as its types are known
  // (and, once open, pages read their data again: nothing between is missed).
  const live = new LiveEvents({
    allProjects: session.isAdmin,
    onClosed: async (events) => {
      // The stream was refused: a session that ended logs out, anything else retries.
      const again = await restore().catch(() => undefined);
      if (again === null) end("Your session has ended. Log in again.");
      else events.restartLater(3000);
    },
  });
  api
    .get("/v1/events/types")
    .then((r) => live.start(r.event_types.map((t) => t.event_type)))
    .catch(() => live.setStatus("closed"));
  const expiryTimer = setTimeout(() => end("Your session has ended (the token expired). Log in again."), Math.max(0, Math.min(session.remaining(), 2 ** 31 - 1)));
  state = { session, live, page: null, expiryTimer };
  const liveBadge = h("span", { class: "live", id: "live-status" }, "connecting");
  live.onStatus((s) => {
    liveBadge.textContent = s === "live" ? "● live" : s;
    liveBadge.dataset.state = s;
  });
  const nav = h("nav", { class: "side" });
  const main = h("main", { id: "page" });
  const header = h(
    "header",
    { class: "top" },
    h("span", { class: "brand" }, "Stackling"),
    h("span", { class: "who" }, h("span", { id: "user-name" }, session.user.name), " in "),
    projectSwitcher(session),
    liveBadge,
    h("button", { type: "button", id: "logout", onclick: doLogout }, "Log out"),
  );
  fill(root, header, h("div", { class: "body" }, nav, main));
  const visible = PAGES.filter((p) => (!p.admin || session.isAdmin) && (!p.needs || p.needs.every((t) => session.has(t))));
  let group = null;
  for (const p of visible) {
    if (p.group !== group) {
      group = p.group;
      nav.appendChild(h("h3", null, group));
    }
    nav.appendChild(h("a", { href: `#/${p.id}`, "data-page": p.id }, p.title));
  }
  window.onhashchange = () => show(visible, nav, main);
  show(visible, nav, main);
}

function show(visible, nav, main) {
  if (!state) return;
  const id = location.hash.replace(/^#\/?/, "") || "overview";
  const page = visible.find((p) => p.id === id) || visible[0];
  if (state.page && state.page.dispose) state.page.dispose();
  for (const a of nav.querySelectorAll("a")) a.classList.toggle("current", a.dataset.page === page.id);
  const { session, live } = state;
  const offs = [];
  const ctx = {
    session,
    pid: session.project.id,
    /** Handle events of this project (``anyProject``: every project's, for admins). */
    on(pattern, fn, { anyProject = false } = {}) {
      offs.push(live.on(pattern, (e) => (anyProject || e.project_id === session.project.id) && fn(e)));
    },
    onResync(fn) {
      offs.push(live.onResync(fn));
    },
  };
  const el = h("div", { class: "page", "data-page": page.id });
  fill(main, el);
  const rendered = page.render(ctx, el) || {};
  state.page = {
    dispose() {
      for (const off of offs) off();
      if (rendered.dispose) rendered.dispose();
    },
  };
}

setSessionEndHandler(() => end("Your session has ended. Log in again."));

restore()
  .then((session) => (session ? start(session) : loginView()))
  .catch((e) => loginView(e.message));
