// Overview: the project's quota usage as bars, refreshed when its resources change.

import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { errorLine, usageBar, debounce } from "../ui.js";

export function renderOverview(ctx, el) {
  const { pid, session } = ctx;
  const bars = h("div", { class: "usage-grid", "data-list": "quotas" });
  const err = errorLine();
  fill(el, h("h1", null, `Overview of ${session.project.name}`), err.el, bars);

  async function reload() {
    const out = [];
    const failures = [];
    const tasks = [];
    if (session.has("compute")) {
      tasks.push(
        api.get(`/compute/v2.1/os-quota-sets/${pid}/detail`).then(({ quota_set: q }) => {
          out.push(["Servers", q.instances.in_use, q.instances.limit, ""]);
          out.push(["Cores", q.cores.in_use, q.cores.limit, ""]);
          out.push(["RAM", q.ram.in_use, q.ram.limit, " MiB"]);
        }),
      );
    }
    if (session.has("block-storage") || session.has("volumev3")) {
      tasks.push(
        api.get(`/volume/v3/${pid}/os-quota-sets/${pid}?usage=true`).then(({ quota_set: q }) => {
          out.push(["Volumes", q.volumes.in_use, q.volumes.limit, ""]);
          out.push(["Gigabytes", q.gigabytes.in_use, q.gigabytes.limit, " GiB"]);
          if (q.snapshots) out.push(["Snapshots", q.snapshots.in_use, q.snapshots.limit, ""]);
        }),
      );
    }
    if (session.has("network")) {
      tasks.push(
        api.get(`/network/v2.0/quotas/${pid}/details`).then(({ quota: q }) => {
          for (const [key, label] of [["network", "Networks"], ["port", "Ports"], ["router", "Routers"], ["floatingip", "Floating IPs"], ["security_group", "Security groups"]]) {
            if (q[key]) out.push([label, q[key].used, q[key].limit, ""]);
          }
        }),
      );
    }
    const results = await Promise.allSettled(tasks);
    for (const r of results) if (r.status === "rejected") failures.push(r.reason.message);
    const order = ["Servers", "Cores", "RAM", "Volumes", "Gigabytes", "Snapshots", "Ports", "Floating IPs", "Networks", "Routers", "Security groups"];
    out.sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
    fill(bars, out.map(([label, used, limit, unit]) => usageBar(label, used, limit, unit)));
    if (failures.length) err.show(failures.join("; "));
    else err.clear();
  }

  const later = debounce(reload, 300);
  for (const p of ["compute.server.*.end", "volume.volume.*.end", "volume.snapshot.#", "network.*.create.end", "network.*.delete.end"]) ctx.on(p, later);
  ctx.onResync(reload);
  reload();
  return { dispose: later.cancel };
}
