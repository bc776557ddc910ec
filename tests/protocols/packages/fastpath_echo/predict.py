"""Echoes its inputs; x == "raw" answers bytes, x == "boom" raises (the error envelope)."""


class Echo:
    def predict(self, x, n=0):
        if x == "raw":
            return b"\x00raw bytes\xff"
        if x == "boom":
            raise ValueError("boom: the model failed on purpose")
        return {"x": x, "n": n}
