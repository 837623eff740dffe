// Networking: networks and subnets, routers (gateway and interfaces), security groups
// and their rules, floating IPs.

import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { action, form, statusBadge, table } from "../ui.js";
import { listPage, options, setOptions } from "./kit.js";

const N = "/network/v2.0";

export function renderNetworks(ctx, el) {
  let subnets = [];
  let networks = [];
  const subnetTable = h("div", { class: "list-body", "data-list": "subnets" });
  let networkSelect = null;
  const subnetForm = ctx.session.canWrite
    ? form({
        name: "subnets",
        fields: [
          { name: "name", label: "Name", required: true },
          { name: "network_id", label: "Network", type: "select", required: true, options: [] },
          { name: "cidr", label: "CIDR", required: true, placeholder: "10.0.0.0/24" },
          { name: "gateway_ip", label: "Gateway IP", placeholder: "(the first address)" },
          { name: "enable_dhcp", label: "DHCP", type: "checkbox", value: true },
        ],
        onSubmit: async (v) => {
          const subnet = { name: v.name, network_id: v.network_id, cidr: v.cidr, ip_version: v.cidr.includes(":") ? 6 : 4, enable_dhcp: v.enable_dhcp };
          if (v.gateway_ip) subnet.gateway_ip = v.gateway_ip;
          await api.post(`${N}/subnets`, { subnet });
          await page.reload();
        },
      })
    : null;
  if (subnetForm) networkSelect = subnetForm.querySelector("select[name=network_id]");
  const subnetSlot = h(
    "div",
    { class: "sub-list" },
    h("h2", null, "Subnets"),
    subnetForm ? h("details", { class: "create" }, h("summary", null, "New subnet"), subnetForm) : null,
    subnetTable,
  );
  const page = listPage(ctx, el, {
    title: "Networks",
    name: "networks",
    events: ["network.network.#", "network.subnet.#"],
    load: async () => {
      const [n, s] = await Promise.all([api.get(`${N}/networks`), api.get(`${N}/subnets`)]);
      subnets = s.subnets;
      networks = n.networks;
      return networks;
    },
    signature: () => subnets,
    columns: [
      { title: "Name", class: "name", value: (n) => n.name || n.id },
      { title: "Subnets", value: (n) => subnets.filter((s) => s.network_id === n.id).map((s) => `${s.name || s.id} ${s.cidr}`).join(", ") || "—" },
      { title: "External", value: (n) => (n["router:external"] ? "yes" : "no") },
      { title: "Shared", value: (n) => (n.shared ? "yes" : "no") },
      { title: "Status", value: (n) => statusBadge(n.status) },
      { title: "", class: "actions", value: (n) => (ctx.session.canWrite && n.project_id === ctx.pid ? action("Delete", () => api.del(`${N}/networks/${n.id}`), { confirm: "Confirm delete", danger: true }) : null) },
    ],
    create: {
      title: "New network",
      fields: [{ name: "name", label: "Name", required: true }],
      onSubmit: (v) => api.post(`${N}/networks`, { network: { name: v.name, admin_state_up: true } }),
    },
    loaded: () => renderSubnets(),
    after: subnetSlot,
  });

  function renderSubnets() {
    if (networkSelect) setOptions(networkSelect, options(networks.filter((n) => n.project_id === ctx.pid)));
    fill(
      subnetTable,
      table(
        [
          { title: "Name", class: "name", value: (s) => s.name || s.id },
          { title: "CIDR", value: (s) => s.cidr },
          { title: "Gateway", value: (s) => s.gateway_ip || "—" },
          { title: "DHCP", value: (s) => (s.enable_dhcp ? "on" : "off") },
          { title: "Pools", value: (s) => (s.allocation_pools || []).map((p) => `${p.start}–${p.end}`).join(", ") },
          { title: "", class: "actions", value: (s) => (ctx.session.canWrite ? action("Delete", () => api.del(`${N}/subnets/${s.id}`).then(page.reload), { confirm: "Confirm delete", danger: true }) : null) },
        ],
        subnets.filter((s) => s.project_id === ctx.pid),
        { name: "subnets", empty: "No subnets yet." },
      ),
    );
  }
  return page;
}

export function renderRouters(ctx, el) {
  let networks = [];
  let subnets = [];
  let interfaces = [];
  const subnetName = (id) => {
    const s = subnets.find((x) => x.id === id);
    return s ? `${s.name || s.id} (${s.cidr})` : id;
  };
  const netName = (id) => (networks.find((n) => n.id === id) || {}).name || id;
  return listPage(ctx, el, {
    title: "Routers",
    name: "routers",
    events: ["network.router.#", "network.port.#", "network.subnet.#"],
    load: async () => {
      const [r, n, s, p] = await Promise.all([
        api.get(`${N}/routers`),
        api.get(`${N}/networks`),
        api.get(`${N}/subnets`),
        api.get(`${N}/ports?device_owner=network:router_interface`),
      ]);
      networks = n.networks;
      subnets = s.subnets;
      interfaces = p.ports;
      return r.routers;
    },
    signature: () => [networks, subnets, interfaces],
    columns: [
      { title: "Name", class: "name", value: (r) => r.name || r.id },
      { title: "Status", value: (r) => statusBadge(r.status) },
      {
        title: "External gateway",
        value: (r) => {
          const gw = r.external_gateway_info;
          if (!gw) return ctx.session.canWrite ? gatewayForm(r) : "—";
          const ips = (gw.external_fixed_ips || []).map((f) => f.ip_address).join(", ");
          return [
            `${netName(gw.network_id)}${ips ? ` (${ips})` : ""}`,
            ctx.session.canWrite ? action("Clear gateway", () => api.put(`${N}/routers/${r.id}`, { router: { external_gateway_info: null } })) : null,
          ];
        },
      },
      {
        title: "Interfaces",
        value: (r) => {
          const mine = interfaces.filter((p) => p.device_id === r.id);
          return [
            h(
              "ul",
              { class: "plain" },
              mine.map((p) => {
                const sid = (p.fixed_ips[0] || {}).subnet_id;
                return h(
                  "li",
                  null,
                  `${subnetName(sid)} — ${(p.fixed_ips[0] || {}).ip_address || ""} `,
                  ctx.session.canWrite ? action("Remove", () => api.put(`${N}/routers/${r.id}/remove_router_interface`, { subnet_id: sid })) : null,
                );
              }),
            ),
            ctx.session.canWrite ? interfaceForm(r) : null,
          ];
        },
      },
      { title: "", class: "actions", value: (r) => (ctx.session.canWrite ? action("Delete", () => api.del(`${N}/routers/${r.id}`), { confirm: "Confirm delete", danger: true }) : null) },
    ],
    create: {
      title: "New router",
      fields: async () => {
        const { networks: nets } = await api.get(`${N}/networks?router:external=true`);
        return [
          { name: "name", label: "Name", required: true },
          { name: "external", label: "External network", type: "select", options: options(nets), none: "(no gateway)" },
        ];
      },
      onSubmit: (v) => {
        const router = { name: v.name, admin_state_up: true };
        if (v.external) router.external_gateway_info = { network_id: v.external };
        return api.post(`${N}/routers`, { router });
      },
    },
  });

  function interfaceForm(r) {
    const free = subnets.filter((s) => s.project_id === ctx.pid && !interfaces.some((p) => p.device_id === r.id && p.fixed_ips.some((f) => f.subnet_id === s.id)));
    if (!free.length) return null;
    return form({
      name: `router-interface-${r.name || r.id}`,
      submit: "Add interface",
      fields: [{ name: "subnet", label: "Subnet", type: "select", required: true, options: options(free, (s) => `${s.name || s.id} (${s.cidr})`) }],
      onSubmit: (v) => api.put(`${N}/routers/${r.id}/add_router_interface`, { subnet_id: v.subnet }),
    });
  }

  function gatewayForm(r) {
    const external = networks.filter((n) => n["router:external"]);
    if (!external.length) return "—";
    return form({
      name: `router-gateway-${r.name || r.id}`,
      submit: "Set gateway",
      fields: [{ name: "network", label: "External network", type: "select", required: true, options: options(external) }],
      onSubmit: (v) => api.put(`${N}/routers/${r.id}`, { router: { external_gateway_info: { network_id: v.network } } }),
    });
  }
}

export function renderSecurityGroups(ctx, el) {
  let groups = [];
  const ruleText = (r) => {
    const ports = r.port_range_min === null || r.port_range_min === undefined ? "any port" : r.port_range_min === r.port_range_max ? `port ${r.port_range_min}` : `ports ${r.port_range_min}-${r.port_range_max}`;
    const remote = r.remote_group_id ? `group ${(groups.find((g) => g.id === r.remote_group_id) || {}).name || r.remote_group_id}` : r.remote_ip_prefix || "anywhere";
    return `${r.direction} ${r.ethertype} ${r.protocol || "any protocol"} ${ports} ${r.direction === "ingress" ? "from" : "to"} ${remote}`;
  };
  return listPage(ctx, el, {
    title: "Security groups",
    name: "security-groups",
    events: ["network.security_group.#", "network.security_group_rule.#"],
    load: async () => {
      groups = (await api.get(`${N}/security-groups`)).security_groups;
      return groups;
    },
    columns: [
      { title: "Name", class: "name", value: (g) => g.name },
      { title: "Description", value: (g) => g.description || "" },
      {
        title: "Rules",
        value: (g) => [
          h(
            "ul",
            { class: "plain rules" },
            (g.security_group_rules || []).map((r) => h("li", { "data-rule": r.id }, ruleText(r), " ", ctx.session.canWrite ? action("Delete", () => api.del(`${N}/security-group-rules/${r.id}`)) : null)),
          ),
          ctx.session.canWrite ? ruleForm(g) : null,
        ],
      },
      { title: "", class: "actions", value: (g) => (ctx.session.canWrite ? action("Delete", () => api.del(`${N}/security-groups/${g.id}`), { confirm: "Confirm delete", danger: true }) : null) },
    ],
    create: {
      title: "New security group",
      fields: [
        { name: "name", label: "Name", required: true },
        { name: "description", label: "Description" },
      ],
      onSubmit: (v) => api.post(`${N}/security-groups`, { security_group: { name: v.name, description: v.description } }),
    },
  });

  function ruleForm(g) {
    return h(
      "details",
      { class: "create small" },
      h("summary", null, "Add rule"),
      form({
        name: `rule-${g.name}`,
        submit: "Add rule",
        fields: [
          { name: "direction", label: "Direction", type: "select", required: true, options: [{ value: "ingress", label: "ingress" }, { value: "egress", label: "egress" }] },
          { name: "protocol", label: "Protocol", type: "select", options: ["tcp", "udp", "icmp"].map((p) => ({ value: p, label: p })), none: "any" },
          { name: "port_min", label: "Port from", type: "number" },
          { name: "port_max", label: "Port to", type: "number" },
          { name: "remote_ip_prefix", label: "Remote CIDR", placeholder: "0.0.0.0/0" },
        ],
        onSubmit: (v) => {
          const rule = { security_group_id: g.id, direction: v.direction, ethertype: (v.remote_ip_prefix || "").includes(":") ? "IPv6" : "IPv4" };
          if (v.protocol) rule.protocol = v.protocol;
          if (v.port_min !== null) rule.port_range_min = v.port_min;
          if (v.port_max !== null) rule.port_range_max = v.port_max;
          else if (v.port_min !== null) rule.port_range_max = v.port_min;
          if (v.remote_ip_prefix) rule.remote_ip_prefix = v.remote_ip_prefix;
          return api.post(`${N}/security-group-rules`, { security_group_rule: rule });
        },
      }),
    );
  }
}

export function renderFloatingIps(ctx, el) {
  let ports = [];
  return listPage(ctx, el, {
    title: "Floating IPs",
    name: "floating-ips",
    events: ["network.floatingip.#"],
    load: async () => {
      const [f, p] = await Promise.all([api.get(`${N}/floatingips`), api.get(`${N}/ports`)]);
      ports = p.ports;
      return f.floatingips;
    },
    signature: () => ports.map((p) => [p.id, p.device_id]),
    columns: [
      { title: "Address", class: "name", value: (f) => f.floating_ip_address },
      { title: "Status", value: (f) => statusBadge(f.status) },
      { title: "Fixed IP", value: (f) => f.fixed_ip_address || "—" },
      { title: "Server", value: (f) => (f.port_details && f.port_details.device_id) || (ports.find((p) => p.id === f.port_id) || {}).device_id || "—" },
      {
        title: "",
        class: "actions",
        value: (f) =>
          ctx.session.canWrite
            ? [
                f.port_id ? action("Disassociate", () => api.put(`${N}/floatingips/${f.id}`, { floatingip: { port_id: null } })) : null,
                action("Release", () => api.del(`${N}/floatingips/${f.id}`), { confirm: "Confirm release", danger: true }),
              ]
            : null,
      },
    ],
    create: {
      title: "Allocate a floating IP",
      submit: "Allocate",
      fields: async () => {
        const { networks } = await api.get(`${N}/networks?router:external=true`);
        return [{ name: "network", label: "External network", type: "select", required: true, options: options(networks) }];
      },
      onSubmit: (v) => api.post(`${N}/floatingips`, { floatingip: { floating_network_id: v.network } }),
    },
  });
}
