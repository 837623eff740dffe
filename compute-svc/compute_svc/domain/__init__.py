"""Compute's logic: flavors, keypairs, images, servers and the boot and delete flows."""
