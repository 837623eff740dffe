"""RPC methods the compute service offers on its topic."""
