"""Writes model/model.pkl: predicts 1 when x1 + x2 > 1 (run from this directory)."""

import pickle
import sys

sys.path.insert(0, "model")
from linear import LinearClassifier  # noqa: E402

with open("model/model.pkl", "wb") as f:
    pickle.dump(LinearClassifier([1.0, 1.0], -1.0), f, protocol=2)
