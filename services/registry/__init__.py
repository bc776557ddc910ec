"""The registry: source of truth for models, versions, services and events; runs the controller."""
