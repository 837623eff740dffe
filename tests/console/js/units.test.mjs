// Unit tests of the console's pure parts, run by Node's own test runner (no packages):
//   node --test tests/console/js/
import { test } from "node:test";
import assert from "node:assert/strict";

const JS = new URL("../../../api-gateway/api_gateway/console/js/", import.meta.url);
const { matches, Seen } = await import(new URL("events.js", JS));
const { faultMessage } = await import(new URL("api.js", JS));
const { layout } = await import(new URL("topology.js", JS));
const { addressText, base64 } = await import(new URL("pages/servers.js", JS));

test("AMQP topic patterns match event types as the gateway's filter does", () => {
  assert.ok(matches("compute.server.*.end", "compute.server.create.end"));
  assert.ok(!matches("compute.server.*.end", "compute.server.create.start"));
  assert.ok(matches("compute.server.#", "compute.server.create.end"));
  assert.ok(matches("#", "volume.volume.attach.end"));
  assert.ok(matches("*.service.heartbeat", "network.service.heartbeat"));
  assert.ok(!matches("network.#", "compute.server.create.end"));
  assert.ok(matches("compute.#.end", "compute.server.create.end"));
  assert.ok(!matches("compute.server", "compute.server.create.end"));
});

test("an event id is handled once, and the memory stays bounded", () => {
  const seen = new Seen(3);
  assert.ok(seen.first("a"));
  assert.ok(!seen.first("a"));
  for (const id of ["b", "c", "d"]) seen.first(id);
  assert.equal(seen.ids.size, 3);
  assert.ok(seen.first("a")); // forgotten: the oldest went first
});

test("every OpenStack error shape gives its message", () => {
  assert.equal(faultMessage(404, { itemNotFound: { code: 404, message: "Server x could not be found." } }), "Server x could not be found.");
  assert.equal(faultMessage(400, { NeutronError: { type: "HTTPBadRequest", message: "Invalid CIDR", detail: "" } }), "Invalid CIDR");
  assert.equal(faultMessage(401, { error: { code: 401, title: "Unauthorized", message: "The request you have made requires authentication." } }), "The request you have made requires authentication.");
  assert.equal(faultMessage(404, { code: 404, title: "Not Found", message: "No image found" }), "No image found");
  assert.equal(faultMessage(422, { detail: [{ msg: "field required" }] }), "field required");
  assert.equal(faultMessage(502, null, ""), "HTTP 502");
});

test("the topology puts servers under their network and routers above theirs", () => {
  const picture = layout({
    networks: [
      { id: "ext", name: "public", "router:external": true },
      { id: "n1", name: "web" },
      { id: "n2", name: "db" },
    ],
    subnets: [{ id: "s1", network_id: "n1", cidr: "10.0.0.0/24" }],
    routers: [{ id: "r1", name: "edge", external_gateway_info: { network_id: "ext" } }],
    ports: [
      { device_owner: "network:router_interface", device_id: "r1", network_id: "n1" },
      { device_owner: "compute:nova", device_id: "vm1", network_id: "n1" },
      { device_owner: "compute:nova", device_id: "vm2", network_id: "n2" },
      { device_owner: "compute:nova", device_id: "gone", network_id: "n2" },
    ],
    servers: [
      { id: "vm1", name: "<img src=x onerror=alert(1)>", status: "ACTIVE" },
      { id: "vm2", name: "b", status: "BUILD" },
    ],
  });
  const node = (id) => picture.nodes.find((n) => n.id === id);
  assert.equal(node("ext").kind, "external");
  assert.equal(node("n1").detail, "10.0.0.0/24");
  assert.equal(node("vm1").label, "<img src=x onerror=alert(1)>"); // a label, drawn as text
  assert.ok(node("vm1").y > node("n1").y && node("r1").y < node("n1").y && node("ext").y < node("r1").y);
  assert.ok(node("vm1").x >= node("n1").x && node("vm1").x < node("n1").x + node("n1").w);
  assert.equal(node("gone"), undefined); // a port of a server not listed draws nothing
  const kinds = picture.links.map((l) => `${l.kind}:${l.from}->${l.to}`).sort();
  assert.deepEqual(kinds, ["gateway:r1->ext", "interface:r1->n1", "port:vm1->n1", "port:vm2->n2"]);
  // Networks side by side never overlap.
  assert.ok(node("n1").x + node("n1").w <= node("n2").x || node("n2").x + node("n2").w <= node("n1").x);
});

test("addresses and user data are shown and sent as the APIs expect", () => {
  const text = addressText({ web: [{ addr: "10.0.0.5" }, { addr: "172.24.4.9", "OS-EXT-IPS:type": "floating" }] });
  assert.equal(text, "web: 10.0.0.5, 172.24.4.9 (floating)");
  assert.equal(addressText({}), "—");
  assert.equal(base64("#!/bin/sh\necho é"), Buffer.from("#!/bin/sh\necho é").toString("base64"));
});
