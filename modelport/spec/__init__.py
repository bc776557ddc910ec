"""User-facing specifications: the ModelService YAML (service.py)."""
