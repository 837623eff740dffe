"""volume-agent: one per backend host; holds the volume files and their iSCSI exports."""
