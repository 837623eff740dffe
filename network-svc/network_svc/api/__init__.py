"""Networking v2.0 over HTTP: thin routes around ``network_svc.domain``."""
