"""Stackling Networking: Networking v2.0."""
