"""Stackling Block Storage: Block Storage v3."""
