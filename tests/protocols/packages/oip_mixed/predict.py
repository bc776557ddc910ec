class Mixed:
    """No numpy in this environment: OIP inputs arrive as plain Python values."""

    def predict(self, prefix, n, blob, values):
        return {"echo": prefix * int(n), "size": len(blob), "first": blob[:1].hex(),
                "values": values}
