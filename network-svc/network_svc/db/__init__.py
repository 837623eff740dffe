"""The network database: models and migrations."""
