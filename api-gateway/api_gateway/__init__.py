"""Stackling Gateway: Identity v3, the catalog and the proxy."""
