raise ImportError("the package's dataclasses.py was imported instead of the stdlib")
