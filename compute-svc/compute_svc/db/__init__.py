"""The compute database: models and migrations."""
