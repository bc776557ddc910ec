"""Declares "batching" in config.json but has no predict_batch: setup must say so."""


class Predictor:
    def predict(self, x):
        return x
