"""The binary workload: takes a raw byte input (1 MB in the bench) and returns its length.

The model does nothing with the bytes, so the cost measured is moving them through the server.
"""


class Predictor:
    def setup(self):
        pass

    def predict(self, data):
        return len(data)
