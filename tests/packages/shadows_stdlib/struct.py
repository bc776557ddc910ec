raise ImportError("the package's struct.py was imported instead of the stdlib")
