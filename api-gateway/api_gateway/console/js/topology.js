// The network topology picture: external networks on top, routers below them, then the
// project's networks, each with its servers under it. ``layout`` is pure (tested in Node);
// ``drawTopology`` turns its result into SVG elements.
//
//   const picture = layout({networks, subnets, routers, ports, servers});
//   container.replaceChildren(drawTopology(picture));

import { svg } from "./dom.js";

const SERVER_W = 120;
const SERVER_H = 44;
const NET_H = 26;
const GAP = 40;
const ROUTER_R = 22;
const Y_EXTERNAL = 20;
const Y_ROUTER = 120;
const Y_NETWORK = 200;
const Y_SERVER = 270;
const MARGIN = 20;

const byName = (a, b) => String(a.name || a.id).localeCompare(String(b.name || b.id)) || String(a.id).localeCompare(String(b.id));

/** Nodes (with positions) and links of the picture, from the APIs' lists. */
export function layout({ networks = [], subnets = [], routers = [], ports = [], servers = [] }) {
  const cidrs = new Map();
  for (const s of subnets) {
    if (!cidrs.has(s.network_id)) cidrs.set(s.network_id, []);
    cidrs.get(s.network_id).push(s.cidr);
  }
  const external = networks.filter((n) => n["router:external"]).sort(byName);
  const tenant = networks.filter((n) => !n["router:external"]).sort(byName);
  const serverById = new Map(servers.map((s) => [s.id, s]));
  // Which networks each server and router is on, from their ports.
  const serverNets = new Map();
  const routerNets = new Map();
  for (const p of ports) {
    const owner = p.device_owner || "";
    if (owner.startsWith("compute:") && serverById.has(p.device_id)) {
      if (!serverNets.has(p.device_id)) serverNets.set(p.device_id, new Set());
      serverNets.get(p.device_id).add(p.network_id);
    } else if (owner === "network:router_interface" || owner === "network:router_interface_distributed") {
      if (!routerNets.has(p.device_id)) routerNets.set(p.device_id, new Set());
      routerNets.get(p.device_id).add(p.network_id);
    }
  }
  const nodes = [];
  const links = [];
  const netNode = new Map();
  // Tenant networks side by side, each as wide as the servers placed under it.
  const placedServers = new Map();
  let x = MARGIN;
  for (const net of tenant) {
    const mine = [...serverNets.entries()]
      .filter(([sid, nets]) => nets.has(net.id) && !placedServers.has(sid))
      .map(([sid]) => serverById.get(sid))
      .sort(byName);
    const width = Math.max(180, mine.length * (SERVER_W + 10) - 10);
    const node = { kind: "network", id: net.id, label: net.name || net.id, detail: (cidrs.get(net.id) || []).join(", "), status: net.status, x, y: Y_NETWORK, w: width, h: NET_H };
    nodes.push(node);
    netNode.set(net.id, node);
    mine.forEach((server, i) => {
      const s = { kind: "server", id: server.id, label: server.name || server.id, detail: "", status: server.status, x: x + i * (SERVER_W + 10), y: Y_SERVER, w: SERVER_W, h: SERVER_H };
      placedServers.set(server.id, s);
      nodes.push(s);
    });
    x += width + GAP;
  }
  const width = Math.max(x - GAP + MARGIN, 400);
  // External networks share the top row.
  if (external.length) {
    const each = (width - 2 * MARGIN - GAP * (external.length - 1)) / external.length;
    external.forEach((net, i) => {
      const node = { kind: "external", id: net.id, label: net.name || net.id, detail: (cidrs.get(net.id) || []).join(", "), status: net.status, x: MARGIN + i * (each + GAP), y: Y_EXTERNAL, w: each, h: NET_H };
      nodes.push(node);
      netNode.set(net.id, node);
    });
  }
  // Routers above the middle of the networks they join.
  const sortedRouters = [...routers].sort(byName);
  let freeX = MARGIN + ROUTER_R;
  const routerNodes = [];
  for (const r of sortedRouters) {
    const joined = [...(routerNets.get(r.id) || [])].map((id) => netNode.get(id)).filter(Boolean);
    let cx;
    if (joined.length) cx = joined.reduce((sum, n) => sum + n.x + n.w / 2, 0) / joined.length;
    else {
      cx = freeX;
      freeX += 2 * ROUTER_R + GAP;
    }
    // Never on top of another router.
    while (routerNodes.some((o) => Math.abs(o.cx - cx) < 2 * ROUTER_R + 10)) cx += 2 * ROUTER_R + 10;
    const node = { kind: "router", id: r.id, label: r.name || r.id, detail: "", status: r.status, cx, cy: Y_ROUTER, x: cx - ROUTER_R, y: Y_ROUTER - ROUTER_R, w: 2 * ROUTER_R, h: 2 * ROUTER_R };
    routerNodes.push(node);
    nodes.push(node);
    for (const net of joined) links.push(link("interface", node, net));
    const gw = r.external_gateway_info && r.external_gateway_info.network_id;
    if (gw && netNode.has(gw)) links.push(link("gateway", node, netNode.get(gw)));
  }
  for (const [sid, nets] of serverNets) {
    const s = placedServers.get(sid);
    if (!s) continue;
    for (const nid of nets) if (netNode.has(nid)) links.push(link("port", s, netNode.get(nid)));
  }
  const right = Math.max(width, ...nodes.map((n) => n.x + n.w + MARGIN));
  const bottom = Math.max(Y_SERVER + SERVER_H + MARGIN, ...nodes.map((n) => n.y + n.h + MARGIN));
  return { width: right, height: bottom, nodes, links };
}

function center(n) {
  return { x: n.x + n.w / 2, y: n.y + n.h / 2 };
}

function link(kind, a, b) {
  const from = center(a);
  const to = center(b);
  // To a network bar: straight down (or up) to the bar, clamped inside it.
  const tx = Math.min(Math.max(from.x, b.x + 8), b.x + b.w - 8);
  const ty = from.y < to.y ? b.y : b.y + b.h;
  return { kind, from: a.id, to: b.id, x1: from.x, y1: from.y, x2: tx, y2: ty };
}

function clip(text, max) {
  const s = String(text);
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** The picture as an <svg> element (every label set as text). */
export function drawTopology(picture) {
  const root = svg("svg", {
    class: "topology",
    viewBox: `0 0 ${picture.width} ${picture.height}`,
    width: picture.width,
    height: picture.height,
    role: "img",
    "aria-label": "Network topology",
  });
  const linkLayer = svg("g", { class: "links" });
  for (const l of picture.links) {
    linkLayer.appendChild(svg("line", { class: `link ${l.kind}`, x1: l.x1, y1: l.y1, x2: l.x2, y2: l.y2, "data-from": l.from, "data-to": l.to }));
  }
  root.appendChild(linkLayer);
  for (const n of picture.nodes) {
    const g = svg("g", { class: `node ${n.kind}`, "data-id": n.id, "data-kind": n.kind, "data-status": n.status || "" });
    g.appendChild(svg("title", null, `${n.kind}: ${n.label}${n.detail ? ` (${n.detail})` : ""}${n.status ? ` — ${n.status}` : ""}`));
    if (n.kind === "router") {
      g.appendChild(svg("circle", { cx: n.cx, cy: n.cy, r: n.w / 2 }));
      g.appendChild(svg("text", { x: n.cx + n.w / 2 + 6, y: n.cy + 4, class: "label" }, clip(n.label, 20)));
    } else if (n.kind === "server") {
      g.appendChild(svg("rect", { x: n.x, y: n.y, width: n.w, height: n.h, rx: 6, class: `box status-${String(n.status || "").toLowerCase()}` }));
      g.appendChild(svg("text", { x: n.x + n.w / 2, y: n.y + 18, "text-anchor": "middle", class: "label" }, clip(n.label, 16)));
      g.appendChild(svg("text", { x: n.x + n.w / 2, y: n.y + 34, "text-anchor": "middle", class: "status" }, n.status || ""));
    } else {
      g.appendChild(svg("rect", { x: n.x, y: n.y, width: n.w, height: n.h, rx: 4 }));
      const text = n.detail ? `${n.label}  ${n.detail}` : n.label;
      g.appendChild(svg("text", { x: n.x + 8, y: n.y + 17, class: "label" }, clip(text, Math.max(8, Math.floor(n.w / 7)))));
    }
    root.appendChild(g);
  }
  return root;
}
