"""Linux data plane: bridges, VXLAN, dnsmasq in namespaces, iptables on bridged traffic."""
