"""The volume database: models and migrations."""
