// Servers: the list (its statuses follow the event stream), launch, power actions,
// delete, and a server's details: console log, volumes, floating IPs.

import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { action, errorLine, form, statusBadge, tableRow, table, debounce, when } from "../ui.js";
import { options } from "./kit.js";

const BOOT_IMAGE_FORMATS = new Set(["aki", "ari"]); // a kernel or ramdisk boots nothing alone

/** "net1: 10.0.0.5, 172.24.4.3 (floating)" for each network of a server. */
export function addressText(addresses) {
  const parts = [];
  for (const [net, list] of Object.entries(addresses || {})) {
    const ips = list.map((a) => (a["OS-EXT-IPS:type"] === "floating" ? `${a.addr} (floating)` : a.addr));
    parts.push(`${net}: ${ips.join(", ")}`);
  }
  return parts.join("; ") || "—";
}

/** Text to base64, as user data is sent (UTF-8 safe). */
export function base64(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

export function renderServers(ctx, el) {
  const { session, pid } = ctx;
  const canWrite = session.canWrite;
  const err = errorLine();
  const listSlot = h("div", { class: "list-body", "data-list": "servers" });
  const launchSlot = h("div", { class: "create-slot" });
  const detailSlot = h("div", { class: "detail-slot" });
  fill(el, h("h1", null, "Servers"), canWrite ? launchSlot : null, err.el, listSlot, detailSlot);
  const names = { flavors: new Map(), images: new Map() };
  const rows = new Map(); // id -> server
  let tbody = null;
  let selected = null;
  let shown = null; // the list as last drawn

  function flavorName(server) {
    const id = server.flavor && server.flavor.id;
    return names.flavors.get(id) || id || "—";
  }

  function imageName(server) {
    const id = server.image && server.image.id;
    return names.images.get(id) || id || "—";
  }

  const columns = [
    { title: "Name", class: "name", value: (s) => h("a", { href: "#/servers", class: "server-link", onclick: (e) => { e.preventDefault(); select(s.id); } }, s.name) },
    { title: "Status", class: "status", value: (s) => statusBadge(s.status) },
    { title: "Addresses", class: "addresses", value: (s) => addressText(s.addresses) },
    { title: "Flavor", value: flavorName },
    { title: "Image", value: imageName },
    { title: "Created", value: (s) => when(s.created) },
    {
      title: "Actions",
      class: "actions",
      value: (s) =>
        canWrite
          ? [
              action("Start", () => api.post(`/compute/v2.1/servers/${s.id}/action`, { "os-start": null })),
              action("Stop", () => api.post(`/compute/v2.1/servers/${s.id}/action`, { "os-stop": null })),
              action("Reboot", () => api.post(`/compute/v2.1/servers/${s.id}/action`, { reboot: { type: "SOFT" } })),
              action("Delete", () => api.del(`/compute/v2.1/servers/${s.id}`), { confirm: "Confirm delete", danger: true }),
            ]
          : null,
    },
  ];

  function putRow(server) {
    rows.set(server.id, server);
    if (!tbody) return render();
    const fresh = tableRow(columns, server);
    const old = tbody.querySelector(`tr[data-id="${CSS.escape(server.id)}"]`);
    if (old) old.replaceWith(fresh);
    else if (listSlot.querySelector(".empty")) render();
    else tbody.appendChild(fresh);
  }

  function dropRow(id) {
    rows.delete(id);
    const old = tbody && tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
    if (old) old.remove();
    if (selected === id) fill(detailSlot);
  }

  function render() {
    const t = table(columns, [...rows.values()], { name: "servers", empty: "No servers yet." });
    fill(listSlot, t);
    tbody = t.querySelector ? t.querySelector("tbody") : null;
    performance.mark("servers-rendered");
  }

  async function reload() {
    try {
      const [list, flavors, images] = await Promise.all([
        api.get("/compute/v2.1/servers/detail"),
        api.get("/compute/v2.1/flavors/detail").catch(() => ({ flavors: [] })),
        session.has("image") ? api.get("/image/v2/images").catch(() => ({ images: [] })) : { images: [] },
      ]);
      for (const f of flavors.flavors) names.flavors.set(f.id, f.name);
      for (const i of images.images) names.images.set(i.id, i.name);
      err.clear();
      const signature = JSON.stringify(list.servers);
      if (signature !== shown) {
        shown = signature;
        rows.clear();
        for (const s of list.servers) rows.set(s.id, s);
        render();
      }
      if (selected) showDetail(selected);
    } catch (e) {
      err.show(e.message);
    }
  }

  // Live: the event's own status is shown at once, then the server is read once more
  // for the rest of its row (addresses, fault).
  const refetch = new Map();
  async function refresh(id) {
    try {
      const { server } = await api.get(`/compute/v2.1/servers/${id}`);
      putRow(server);
      if (selected === id) showDetail(id);
    } catch (e) {
      if (e.status === 404) dropRow(id);
    }
  }
  ctx.on("compute.server.#", (event) => {
    const p = event.payload || {};
    if (!p.id) return;
    if (event.event_type === "compute.server.delete.end") return dropRow(p.id);
    const known = rows.get(p.id);
    if (known && p.status) {
      const cell = tbody && tbody.querySelector(`tr[data-id="${CSS.escape(p.id)}"] td.status`);
      known.status = p.status;
      if (cell) fill(cell, statusBadge(p.status));
      performance.mark(`status:${p.id}:${p.status}`);
    }
    if (!known && event.event_type.startsWith("compute.server.create")) {
      // A new server: its row at once from the event, the rest read just after.
      putRow({ id: p.id, name: p.name || p.id, status: p.status, addresses: {}, created: event.timestamp });
    }
    if (!refetch.has(p.id)) refetch.set(p.id, debounce(() => refresh(p.id), 100));
    refetch.get(p.id)();
  });
  const detailLater = debounce(() => selected && showDetail(selected), 200);
  ctx.on("network.floatingip.#", detailLater);
  ctx.on("volume.volume.#", detailLater);
  ctx.onResync(reload);

  async function launchForm() {
    const [images, flavors, networks, keypairs, groups] = await Promise.all([
      session.has("image") ? api.get("/image/v2/images") : { images: [] },
      api.get("/compute/v2.1/flavors/detail"),
      session.has("network") ? api.get("/network/v2.0/networks") : { networks: [] },
      api.get("/compute/v2.1/os-keypairs"),
      session.has("network") ? api.get("/network/v2.0/security-groups") : { security_groups: [] },
    ]);
    const bootable = images.images.filter((i) => i.status === "active" && !BOOT_IMAGE_FORMATS.has(i.disk_format));
    const tenantNets = networks.networks.filter((n) => !n["router:external"]);
    const f = form({
      name: "launch",
      submit: "Launch",
      fields: [
        { name: "name", label: "Name", required: true },
        { name: "image", label: "Image", type: "select", required: true, options: options(bootable) },
        { name: "flavor", label: "Flavor", type: "select", required: true, options: options(flavors.flavors, (fl) => `${fl.name} (${fl.vcpus} vCPU, ${fl.ram} MiB)`) },
        { name: "network", label: "Network", type: "select", options: options(tenantNets), none: "(the project's only network)" },
        { name: "key_name", label: "Key pair", type: "select", options: keypairs.keypairs.map((k) => ({ value: k.keypair.name, label: k.keypair.name })), none: "(none)" },
        { name: "security_groups", label: "Security groups", type: "multiselect", options: groups.security_groups.map((g) => ({ value: g.name, label: g.name, selected: g.name === "default" })) },
        { name: "user_data", label: "User data", type: "textarea" },
      ],
      onSubmit: async (v) => {
        const server = { name: v.name, imageRef: v.image, flavorRef: v.flavor };
        if (v.network) server.networks = [{ uuid: v.network }];
        if (v.key_name) server.key_name = v.key_name;
        if (v.security_groups.length) server.security_groups = v.security_groups.map((name) => ({ name }));
        if (v.user_data) server.user_data = base64(v.user_data);
        const { server: made } = await api.post("/compute/v2.1/servers", { server });
        if (!rows.has(made.id)) refresh(made.id);
      },
    });
    fill(launchSlot, h("details", { class: "create" }, h("summary", null, "Launch a server"), f));
  }

  function select(id) {
    selected = id;
    showDetail(id);
  }

  // The details of the selected server: built once, its facts and lists refreshed in
  // place after an event (the console log read so far stays).
  let detail = null;
  async function showDetail(id) {
    const server = rows.get(id);
    if (!server) return;
    if (!detail || detail.id !== id || !detailSlot.contains(detail.el)) detail = buildDetail(server);
    fill(
      detail.facts,
      h("dt", null, "ID"), h("dd", null, server.id),
      h("dt", null, "Status"), h("dd", { class: "status" }, statusBadge(server.status)),
      h("dt", null, "Addresses"), h("dd", null, addressText(server.addresses)),
      server.fault ? [h("dt", null, "Fault"), h("dd", { class: "error" }, server.fault.message)] : null,
    );
    await Promise.all([volumeDetail(server, detail.volumes), session.has("network") ? fipDetail(server, detail.fips) : null]);
  }

  function buildDetail(server) {
    const id = server.id;
    const consoleOut = h("pre", { class: "console-log", "data-console": id }, "");
    const logErr = errorLine();
    const readLog = async () => {
      logErr.clear();
      try {
        const { output } = await api.post(`/compute/v2.1/servers/${id}/action`, { "os-getConsoleOutput": { length: 200 } });
        fill(consoleOut, output || "(the console is empty)");
      } catch (e) {
        logErr.show(e.message);
      }
    };
    const facts = h("dl");
    const volumes = h("div", { class: "server-volumes" });
    const fips = h("div", { class: "server-fips" });
    const el = h(
      "section",
      { class: "panel detail", "data-server": id },
      h("h2", null, `Server ${server.name}`),
      facts,
      h("h3", null, "Console log"),
      action("Read console log", readLog, { name: "console-log" }),
      logErr.el,
      consoleOut,
      h("h3", null, "Volumes"),
      volumes,
      session.has("network") ? [h("h3", null, "Floating IPs"), fips] : null,
    );
    fill(detailSlot, el);
    return { id, el, facts, volumes, fips };
  }

  async function volumeDetail(server, part) {
    const err2 = errorLine();
    try {
      const [{ volumeAttachments }, { volumes }] = await Promise.all([
        api.get(`/compute/v2.1/servers/${server.id}/os-volume_attachments`),
        api.get(`/volume/v3/${pid}/volumes/detail`).catch(() => ({ volumes: [] })),
      ]);
      const byId = new Map(volumes.map((v) => [v.id, v]));
      const attached = table(
        [
          { title: "Volume", value: (a) => (byId.get(a.volumeId) || {}).name || a.volumeId },
          { title: "Device", value: (a) => a.device || "—" },
          { title: "Status", value: (a) => statusBadge((byId.get(a.volumeId) || {}).status) },
          { title: "", value: (a) => (canWrite ? action("Detach", () => api.del(`/compute/v2.1/servers/${server.id}/os-volume_attachments/${a.volumeId}`)) : null) },
        ],
        volumeAttachments,
        { key: (a) => a.volumeId, name: "attachments", empty: "No volume attached." },
      );
      const available = volumes.filter((v) => v.status === "available");
      const attach = canWrite
        ? form({
            name: "attach-volume",
            submit: "Attach",
            fields: [{ name: "volume", label: "Volume", type: "select", required: true, options: options(available) }],
            onSubmit: async (v) => {
              await api.post(`/compute/v2.1/servers/${server.id}/os-volume_attachments`, { volumeAttachment: { volumeId: v.volume } });
              volumeDetail(server, part);
            },
          })
        : null;
      fill(part, attached, attach, err2.el);
    } catch (e) {
      fill(part, err2.el);
      err2.show(e.message);
    }
  }

  async function fipDetail(server, part) {
    const err2 = errorLine();
    try {
      const [{ ports }, { floatingips }] = await Promise.all([
        api.get(`/network/v2.0/ports?device_id=${encodeURIComponent(server.id)}`),
        api.get("/network/v2.0/floatingips"),
      ]);
      const portIds = new Set(ports.map((p) => p.id));
      const mine = floatingips.filter((f) => portIds.has(f.port_id));
      const free = floatingips.filter((f) => !f.port_id);
      const list = table(
        [
          { title: "Floating IP", value: (f) => f.floating_ip_address },
          { title: "Fixed IP", value: (f) => f.fixed_ip_address || "—" },
          { title: "Status", value: (f) => statusBadge(f.status) },
          { title: "", value: (f) => (canWrite ? action("Disassociate", () => api.put(`/network/v2.0/floatingips/${f.id}`, { floatingip: { port_id: null } })) : null) },
        ],
        mine,
        { name: "server-fips", empty: "No floating IP." },
      );
      const assoc =
        canWrite && ports.length
          ? form({
              name: "associate-fip",
              submit: "Associate",
              fields: [
                { name: "fip", label: "Floating IP", type: "select", required: true, options: options(free, (f) => f.floating_ip_address) },
                { name: "port", label: "Port", type: "select", required: true, options: options(ports, (p) => `${(p.fixed_ips[0] || {}).ip_address || p.id}`) },
              ],
              onSubmit: async (v) => {
                await api.put(`/network/v2.0/floatingips/${v.fip}`, { floatingip: { port_id: v.port } });
                fipDetail(server, part);
              },
            })
          : null;
      fill(part, list, assoc, err2.el);
    } catch (e) {
      fill(part, err2.el);
      err2.show(e.message);
    }
  }

  if (canWrite) launchForm().catch((e) => err.show(e.message));
  reload();
  return {
    dispose() {
      detailLater.cancel();
      for (const d of refetch.values()) d.cancel();
    },
  };
}
