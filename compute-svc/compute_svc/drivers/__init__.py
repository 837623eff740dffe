"""Host data-plane drivers of compute-agent: the hypervisor behind ``VirtDriver``."""
