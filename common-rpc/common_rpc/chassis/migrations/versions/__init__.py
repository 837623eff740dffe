"""Revisions of the chassis branch (see ``common_rpc.chassis.migrations``)."""
