"""A ModelService rendered for another engine (``modelport export``): Kubernetes today."""
