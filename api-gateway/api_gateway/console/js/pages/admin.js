// For admins: hypervisors and their usage, services and agents with their health,
// projects, users and role assignments.

import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { action, errorLine, form, statusBadge, table, usageBar, debounce, when } from "../ui.js";
import { listPage, options } from "./kit.js";

const I = "/identity/v3";

export function renderHypervisors(ctx, el) {
  const page = listPage(ctx, el, {
    title: "Hypervisors",
    name: "hypervisors",
    load: async () => (await api.get("/compute/v2.1/os-hypervisors/detail")).hypervisors,
    columns: [
      { title: "Host", class: "name", value: (x) => x.hypervisor_hostname },
      { title: "State", value: (x) => statusBadge(x.state) },
      { title: "Status", value: (x) => statusBadge(x.status) },
      { title: "vCPUs", class: "usage-cell", value: (x) => usageBar("vCPUs", x.vcpus_used, x.vcpus) },
      { title: "RAM", class: "usage-cell", value: (x) => usageBar("RAM", x.memory_mb_used, x.memory_mb, " MiB") },
      { title: "Disk", class: "usage-cell", value: (x) => usageBar("Disk", x.local_gb_used, x.local_gb, " GiB") },
      { title: "Servers", class: "running", value: (x) => String(x.running_vms) },
    ],
  });
  // Usage moves with every project's servers: admins get every project's events.
  const later = debounce(page.reload, 300);
  ctx.on("compute.server.*.end", later, { anyProject: true });
  ctx.on("compute.service.heartbeat", later, { anyProject: true });
  return { reload: page.reload, dispose: () => (later.cancel(), page.dispose()) };
}

export function renderServices(ctx, el) {
  const err = errorLine();
  const body = h("div", { class: "list-body", "data-list": "services" });
  fill(el, h("h1", null, "Services and agents"), err.el, body);
  const health = (alive) => statusBadge(alive ? "up" : "down");

  async function reload() {
    const parts = [];
    const failures = [];
    const want = [];
    if (ctx.session.has("compute")) want.push(["Compute", api.get("/compute/v2.1/os-services").then((r) => r.services.map((s) => ({ id: `c-${s.id}`, binary: s.binary, host: s.host, zone: s.zone, admin: s.status, alive: s.state === "up", seen: s.updated_at })))]);
    if (ctx.session.has("network")) want.push(["Network", api.get("/network/v2.0/agents").then((r) => r.agents.map((a) => ({ id: `n-${a.id}`, binary: a.binary, host: a.host, zone: a.availability_zone || "", admin: a.admin_state_up ? "enabled" : "disabled", alive: a.alive, seen: a.heartbeat_timestamp })))]);
    if (ctx.session.has("block-storage") || ctx.session.has("volumev3")) want.push(["Volume", api.get(`/volume/v3/${ctx.pid}/os-services`).then((r) => r.services.map((s, i) => ({ id: `v-${i}`, binary: s.binary, host: s.host, zone: s.zone, admin: s.status, alive: s.state === "up", seen: s.updated_at })))]);
    const results = await Promise.allSettled(want.map((w) => w[1]));
    results.forEach((r, i) => {
      if (r.status === "rejected") return failures.push(`${want[i][0]}: ${r.reason.message}`);
      parts.push(
        h("h2", null, want[i][0]),
        table(
          [
            { title: "Binary", class: "name", value: (s) => s.binary },
            { title: "Host", value: (s) => s.host },
            { title: "Zone", value: (s) => s.zone },
            { title: "Admin", value: (s) => statusBadge(s.admin) },
            { title: "Health", class: "status", value: (s) => health(s.alive) },
            { title: "Last heartbeat", value: (s) => when(s.seen) },
          ],
          r.value,
          { name: `services-${want[i][0].toLowerCase()}`, empty: "None reported." },
        ),
      );
    });
    fill(body, parts);
    if (failures.length) err.show(failures.join("; "));
    else err.clear();
  }

  const later = debounce(reload, 300);
  ctx.on("*.service.heartbeat", later, { anyProject: true });
  ctx.onResync(reload);
  reload();
  return { dispose: later.cancel };
}

export function renderIdentity(ctx, el) {
  const projectsEl = h("div");
  const usersEl = h("div");
  const assignEl = h("div");
  fill(el, h("h1", null, "Projects, users and roles"), projectsEl, usersEl, assignEl);
  let projects = [];
  let users = [];
  let roles = [];
  const reloadAll = async () => {
    const [p, u, r] = await Promise.all([api.get(`${I}/projects`), api.get(`${I}/users`), api.get(`${I}/roles`)]);
    projects = p.projects;
    users = u.users;
    roles = r.roles;
    await Promise.all([projectsPage.reload(), usersPage.reload(), assignPage.reload()]);
    await Promise.all([usersPage.rebuildForm(), assignPage.rebuildForm()]);
  };
  const projectsPage = listPage(ctx, projectsEl, {
    title: "Projects",
    name: "projects",
    load: async () => projects,
    columns: [
      { title: "Name", class: "name", value: (p) => p.name },
      { title: "Description", value: (p) => p.description || "" },
      { title: "Enabled", value: (p) => (p.enabled ? "yes" : "no") },
      { title: "", class: "actions", value: (p) => (p.id === ctx.pid ? null : action("Delete", () => api.del(`${I}/projects/${p.id}`).then(reloadAll), { confirm: "Confirm delete", danger: true })) },
    ],
    create: {
      title: "New project",
      fields: [
        { name: "name", label: "Name", required: true },
        { name: "description", label: "Description" },
      ],
      onSubmit: async (v) => {
        await api.post(`${I}/projects`, { project: { name: v.name, description: v.description, enabled: true } });
        await reloadAll();
      },
    },
  });
  const usersPage = listPage(ctx, usersEl, {
    title: "Users",
    name: "users",
    load: async () => users,
    columns: [
      { title: "Name", class: "name", value: (u) => u.name },
      { title: "Default project", value: (u) => (projects.find((p) => p.id === u.default_project_id) || {}).name || "—" },
      { title: "Enabled", value: (u) => (u.enabled ? "yes" : "no") },
      { title: "", class: "actions", value: (u) => (u.id === ctx.session.user.id ? null : action("Delete", () => api.del(`${I}/users/${u.id}`).then(reloadAll), { confirm: "Confirm delete", danger: true })) },
    ],
    create: {
      title: "New user",
      fields: async () => [
        { name: "name", label: "Name", required: true },
        { name: "password", label: "Password", type: "password", required: true, autocomplete: "new-password" },
        { name: "project", label: "Default project", type: "select", options: options(projects) },
      ],
      onSubmit: async (v) => {
        const user = { name: v.name, password: v.password, enabled: true };
        if (v.project) user.default_project_id = v.project;
        await api.post(`${I}/users`, { user });
        await reloadAll();
      },
    },
  });
  const assignPage = listPage(ctx, assignEl, {
    title: "Role assignments",
    name: "role-assignments",
    key: (a) => `${a.user.id}/${(a.scope.project || {}).id}/${a.role.id}`,
    load: async () => (await api.get(`${I}/role_assignments?include_names=true`)).role_assignments,
    columns: [
      { title: "User", class: "name", value: (a) => a.user.name || a.user.id },
      { title: "Project", value: (a) => (a.scope.project ? a.scope.project.name || a.scope.project.id : "—") },
      { title: "Role", value: (a) => a.role.name || a.role.id },
      { title: "", class: "actions", value: (a) => (a.scope.project ? action("Revoke", () => api.del(`${I}/projects/${a.scope.project.id}/users/${a.user.id}/roles/${a.role.id}`).then(reloadAll), { confirm: "Confirm revoke", danger: true }) : null) },
    ],
    create: {
      title: "Assign a role",
      submit: "Assign",
      fields: async () => [
        { name: "user", label: "User", type: "select", required: true, options: options(users) },
        { name: "project", label: "Project", type: "select", required: true, options: options(projects) },
        { name: "role", label: "Role", type: "select", required: true, options: options(roles) },
      ],
      onSubmit: async (v) => {
        await api.put(`${I}/projects/${v.project}/users/${v.user}/roles/${v.role}`);
        await reloadAll();
      },
    },
  });
  const err = errorLine();
  el.insertBefore(err.el, projectsEl);
  reloadAll().catch((e) => err.show(e.message));
  return {};
}
