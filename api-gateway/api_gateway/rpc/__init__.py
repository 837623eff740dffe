"""RPC methods the gateway service offers on its topic."""
