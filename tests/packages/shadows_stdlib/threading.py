raise ImportError("the package's threading.py was imported instead of the stdlib")
