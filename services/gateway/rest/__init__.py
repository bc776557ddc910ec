"""HTTP adapters: inference (infer.py), management API (management.py), errors (errors.py)."""
