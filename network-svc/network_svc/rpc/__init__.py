"""RPC methods the network service offers on its topic."""
