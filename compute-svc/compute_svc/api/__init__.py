"""HTTP routers of the compute service."""
