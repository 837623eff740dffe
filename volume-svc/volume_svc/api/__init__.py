"""HTTP routers of the volume service."""
