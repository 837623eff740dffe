"""network-agent: one per host, makes the host's bridges, DHCP and firewall match the DB."""
