"""Stackling Compute: Compute v2.1 and Image v2."""
