class Echo:
    def setup(self):
        self.setups = getattr(self, "setups", 0) + 1

    # every input has a default, so a request may send any subset of them
    def predict(self, text=None, blob=None, payload=None, count=None, mode="json"):
        if mode == "bytes":
            return blob[::-1]
        return {
            "text": text,
            "blob_len": None if blob is None else len(blob),
            "blob_type": type(blob).__name__,
            "payload": payload,
            "count": count,
            "count_type": type(count).__name__,
            "setups": self.setups,
        }
