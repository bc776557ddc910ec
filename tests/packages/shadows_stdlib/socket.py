raise ImportError("the package's socket.py was imported instead of the stdlib")
