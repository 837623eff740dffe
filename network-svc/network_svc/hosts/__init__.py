"""Simulated hosts on one machine: network namespaces on a shared underlay (``fabric``),
each running its own agents, with the controller (APIs, broker, databases) in the root
namespace. ``stackling hosts up 3`` (``cli``); see docs/multi-host.md."""
