// Volumes and their snapshots, images (uploaded from the browser), key pairs.

import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { action, bytes, form, statusBadge, table, when } from "../ui.js";
import { listPage } from "./kit.js";

export function renderVolumes(ctx, el) {
  const V = `/volume/v3/${ctx.pid}`;
  const snapSlot = h("div", { class: "sub-list" });
  let volumes = [];
  const page = listPage(ctx, el, {
    title: "Volumes",
    name: "volumes",
    events: ["volume.volume.#", "volume.snapshot.#", "compute.server.attach.end", "compute.server.detach.end"],
    load: async () => {
      const [v, s] = await Promise.all([api.get(`${V}/volumes/detail`), api.get(`${V}/snapshots/detail`)]);
      volumes = v.volumes;
      renderSnapshots(s.snapshots);
      return volumes;
    },
    columns: [
      { title: "Name", class: "name", value: (v) => v.name || v.id },
      { title: "Size", value: (v) => `${v.size} GiB` },
      { title: "Status", class: "status", value: (v) => statusBadge(v.status) },
      { title: "Attached to", value: (v) => (v.attachments || []).map((a) => `${a.server_id} on ${a.device}`).join(", ") || "—" },
      {
        title: "",
        class: "actions",
        value: (v) =>
          ctx.session.canWrite
            ? [
                action("Snapshot", () => api.post(`${V}/snapshots`, { snapshot: { volume_id: v.id, name: `${v.name || v.id}-snap`, force: false } })),
                action("Delete", () => api.del(`${V}/volumes/${v.id}`), { confirm: "Confirm delete", danger: true }),
              ]
            : null,
      },
    ],
    create: {
      title: "New volume",
      fields: [
        { name: "name", label: "Name", required: true },
        { name: "size", label: "Size (GiB)", type: "number", required: true, value: 1, min: 1 },
      ],
      onSubmit: (v) => api.post(`${V}/volumes`, { volume: { name: v.name, size: v.size } }),
    },
    after: snapSlot,
  });

  function renderSnapshots(snapshots) {
    const name = (id) => (volumes.find((v) => v.id === id) || {}).name || id;
    fill(
      snapSlot,
      h("h2", null, "Snapshots"),
      table(
        [
          { title: "Name", class: "name", value: (s) => s.name || s.id },
          { title: "Volume", value: (s) => name(s.volume_id) },
          { title: "Size", value: (s) => `${s.size} GiB` },
          { title: "Status", value: (s) => statusBadge(s.status) },
          { title: "Created", value: (s) => when(s.created_at) },
          { title: "", class: "actions", value: (s) => (ctx.session.canWrite ? action("Delete", () => api.del(`${V}/snapshots/${s.id}`), { confirm: "Confirm delete", danger: true }) : null) },
        ],
        snapshots,
        { name: "snapshots", empty: "No snapshots." },
      ),
    );
  }
  return page;
}

export function renderImages(ctx, el) {
  const progress = h("p", { class: "progress-line", hidden: true });
  const page = listPage(ctx, el, {
    title: "Images",
    name: "images",
    events: [],
    intro: "Images of this project and the public ones. A kernel (aki) and a ramdisk (ari) are uploaded as images too.",
    load: async () => (await api.get("/image/v2/images")).images,
    columns: [
      { title: "Name", class: "name", value: (i) => i.name || i.id },
      { title: "Status", value: (i) => statusBadge(i.status) },
      { title: "Format", value: (i) => `${i.disk_format || "—"}/${i.container_format || "—"}` },
      { title: "Size", value: (i) => bytes(i.size) },
      { title: "Visibility", value: (i) => i.visibility },
      { title: "", class: "actions", value: (i) => (ctx.session.canWrite && i.owner === ctx.pid ? action("Delete", () => api.del(`/image/v2/images/${i.id}`).then(() => page.reload()), { confirm: "Confirm delete", danger: true }) : null) },
    ],
    create: {
      title: "Upload an image",
      submit: "Upload",
      fields: [
        { name: "name", label: "Name", required: true },
        { name: "disk_format", label: "Disk format", type: "select", required: true, options: ["qcow2", "raw", "ami", "aki", "ari"].map((f) => ({ value: f, label: f })) },
        { name: "file", label: "File", type: "file", required: true },
      ],
      onSubmit: async (v) => {
        const container = ["ami", "aki", "ari"].includes(v.disk_format) ? v.disk_format : "bare";
        const image = await api.post("/image/v2/images", { name: v.name, disk_format: v.disk_format, container_format: container });
        progress.hidden = false;
        fill(progress, `Uploading ${bytes(v.file.size)}…`);
        try {
          await api.put(`/image/v2/images/${image.id}/file`, undefined, { body: v.file, headers: { "Content-Type": "application/octet-stream" } });
        } catch (e) {
          await api.del(`/image/v2/images/${image.id}`).catch(() => {});
          throw e;
        } finally {
          progress.hidden = true;
        }
      },
    },
    after: progress,
  });
  return page;
}

export function renderKeypairs(ctx, el) {
  const created = h("div", { class: "created-key" });
  const page = listPage(ctx, el, {
    title: "Key pairs",
    name: "keypairs",
    key: (k) => k.keypair.name,
    load: async () => (await api.get("/compute/v2.1/os-keypairs")).keypairs,
    columns: [
      { title: "Name", class: "name", value: (k) => k.keypair.name },
      { title: "Fingerprint", value: (k) => k.keypair.fingerprint },
      { title: "", class: "actions", value: (k) => (ctx.session.canWrite ? action("Delete", () => api.del(`/compute/v2.1/os-keypairs/${encodeURIComponent(k.keypair.name)}`).then(() => page.reload()), { confirm: "Confirm delete", danger: true }) : null) },
    ],
    create: {
      title: "New key pair",
      fields: [
        { name: "name", label: "Name", required: true },
        { name: "public_key", label: "Public key (empty: generate one)", type: "textarea" },
      ],
      onSubmit: async (v) => {
        const keypair = { name: v.name };
        if (v.public_key.trim()) keypair.public_key = v.public_key.trim();
        const { keypair: made } = await api.post("/compute/v2.1/os-keypairs", { keypair });
        fill(created, made.private_key ? [h("p", null, "The private key, shown this once:"), h("pre", { class: "console-log" }, made.private_key)] : null);
      },
    },
    after: created,
  });
  return page;
}
