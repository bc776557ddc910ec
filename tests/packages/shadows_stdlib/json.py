raise ImportError("the package's json.py was imported instead of the stdlib")
