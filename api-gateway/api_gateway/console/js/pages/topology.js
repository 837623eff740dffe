// The network topology picture, redrawn when a network, router, port or server changes.

import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { drawTopology, layout } from "../topology.js";
import { errorLine, debounce } from "../ui.js";

const N = "/network/v2.0";

export function renderTopology(ctx, el) {
  const err = errorLine();
  const picture = h("div", { class: "topology-box", "data-list": "topology" });
  const legend = h(
    "p",
    { class: "legend" },
    "Top: external networks. Circles: routers (a dashed line is a gateway). Bars: the project's networks, with their servers below.",
  );
  fill(el, h("h1", null, "Network topology"), legend, err.el, picture);

  async function reload() {
    try {
      const [n, s, r, p, sv] = await Promise.all([
        api.get(`${N}/networks`),
        api.get(`${N}/subnets`),
        api.get(`${N}/routers`),
        api.get(`${N}/ports`),
        ctx.session.has("compute") ? api.get("/compute/v2.1/servers/detail") : { servers: [] },
      ]);
      const drawn = layout({ networks: n.networks, subnets: s.subnets, routers: r.routers, ports: p.ports, servers: sv.servers });
      fill(picture, drawTopology(drawn));
      err.clear();
    } catch (e) {
      err.show(e.message);
    }
  }

  const later = debounce(reload, 200);
  for (const pattern of ["network.network.#", "network.subnet.#", "network.router.#", "network.port.#", "compute.server.#"]) ctx.on(pattern, later);
  ctx.onResync(reload);
  reload();
  return { dispose: later.cancel };
}
