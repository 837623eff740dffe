"""Behaviour of the network service: async functions ``(session, ctx, ...)``."""
