"""The builder: turns a model version's requirements into a runnable, cached artifact."""
