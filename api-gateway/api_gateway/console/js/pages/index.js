// Every page of the console: its address (#/id), title, group in the navigation, who
// sees it (``admin``) and the catalog services it needs.

import { renderOverview } from "./overview.js";
import { renderServers } from "./servers.js";
import { renderFloatingIps, renderNetworks, renderRouters, renderSecurityGroups } from "./network.js";
import { renderImages, renderKeypairs, renderVolumes } from "./storage.js";
import { renderTopology } from "./topology.js";
import { renderHypervisors, renderIdentity, renderServices } from "./admin.js";

export const PAGES = [
  { id: "overview", title: "Overview", group: "Project", render: renderOverview },
  { id: "servers", title: "Servers", group: "Compute", needs: ["compute"], render: renderServers },
  { id: "keypairs", title: "Key pairs", group: "Compute", needs: ["compute"], render: renderKeypairs },
  { id: "images", title: "Images", group: "Compute", needs: ["image"], render: renderImages },
  { id: "volumes", title: "Volumes", group: "Storage", needs: ["block-storage"], render: renderVolumes },
  { id: "topology", title: "Topology", group: "Network", needs: ["network"], render: renderTopology },
  { id: "networks", title: "Networks", group: "Network", needs: ["network"], render: renderNetworks },
  { id: "routers", title: "Routers", group: "Network", needs: ["network"], render: renderRouters },
  { id: "security-groups", title: "Security groups", group: "Network", needs: ["network"], render: renderSecurityGroups },
  { id: "floating-ips", title: "Floating IPs", group: "Network", needs: ["network"], render: renderFloatingIps },
  { id: "admin/hypervisors", title: "Hypervisors", group: "Admin", admin: true, needs: ["compute"], render: renderHypervisors },
  { id: "admin/services", title: "Services and agents", group: "Admin", admin: true, render: renderServices },
  { id: "admin/identity", title: "Projects and users", group: "Admin", admin: true, render: renderIdentity },
];
