"""The gateway database: models and migrations."""
