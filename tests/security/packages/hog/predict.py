class Hog:
    """Allocates ``mb`` MiB, or without bound when ``mb`` is 0."""

    def predict(self, mb):
        held = []
        while not mb or len(held) < mb:
            held.append(bytearray(1024 * 1024))
        return {"allocated_mb": len(held)}
