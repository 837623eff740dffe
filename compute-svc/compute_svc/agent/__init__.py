"""compute-agent: one per host, runs the servers the compute service placed on it."""
