"""modelport predictor for the iris example.

config.json names this class as "predict:Predictor". The runtime calls setup()
once, then predict(features=...) per request with the parsed JSON value.

Weights (weights.npz) and class names (labels.json) are read from the package
directory, so editing labels.json changes the answers without retraining.
"""
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


class Predictor:
    def setup(self):
        with np.load(HERE / "weights.npz") as w:
            self.mean = w["mean"]
            self.std = w["std"]
            self.W = w["W"]
            self.b = w["b"]
        self.labels = json.loads((HERE / "labels.json").read_text(encoding="utf-8"))
        if not isinstance(self.labels, list) or len(self.labels) != self.W.shape[1]:
            raise ValueError(
                f"labels.json must be a list of {self.W.shape[1]} class names, "
                f"got {self.labels!r}"
            )
        self.labels = [str(x) for x in self.labels]

    # -- input handling -------------------------------------------------------
    @staticmethod
    def _as_matrix(features):
        """Return (array of shape (n, 4), is_batch)."""
        if isinstance(features, dict):
            # {"features": [...]} passed as a whole, or named measurements
            if "features" in features:
                return Predictor._as_matrix(features["features"])
            missing = [k for k in FEATURES if k not in features]
            if missing:
                raise ValueError(f"features object is missing {missing}; expected keys {FEATURES}")
            features = [features[k] for k in FEATURES]
        if isinstance(features, list) and features and isinstance(features[0], dict):
            return np.vstack([Predictor._as_matrix(f)[0] for f in features]), True
        try:
            x = np.asarray(features, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                "features must be 4 numbers [sepal_length, sepal_width, petal_length, "
                "petal_width] or a list of such lists"
            ) from None
        if x.ndim == 1 and x.shape[0] == 4:
            return x[None, :], False
        if x.ndim == 2 and x.shape[1] == 4 and x.shape[0] > 0:
            return x, True
        raise ValueError(
            "features must be 4 numbers [sepal_length, sepal_width, petal_length, "
            f"petal_width] or a non-empty list of such lists; got shape {list(x.shape)}"
        )

    # -- inference --------------------------------------------------------------
    def _predict_matrix(self, x):
        if not np.all(np.isfinite(x)):
            raise ValueError("features must be finite numbers")
        z = ((x - self.mean) / self.std) @ self.W + self.b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        out = []
        for row in p:
            out.append({
                "label": self.labels[int(row.argmax())],
                "probabilities": {l: round(float(v), 6) for l, v in zip(self.labels, row)},
            })
        return out

    def predict(self, features):
        x, batch = self._as_matrix(features)
        out = self._predict_matrix(x)
        return out if batch else out[0]

    def predict_batch(self, inputs):
        """Batched form: a list of per-request inputs ({"features": ...} dicts or
        bare feature values); returns one result per request, in order."""
        return [self.predict(i["features"] if isinstance(i, dict) and "features" in i else i)
                for i in inputs]
