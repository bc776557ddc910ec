"""The no-op predictor: returns a constant, so a request measures only the serving overhead."""


class Predictor:
    def setup(self):
        pass

    def predict(self, x):
        return "ok"
