"""RPC methods the volume service offers on its topic."""
