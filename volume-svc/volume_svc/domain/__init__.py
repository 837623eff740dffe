"""Volume service logic: states, quotas, volumes, snapshots, types, attachments."""
