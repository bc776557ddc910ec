# A tiny scikit-learn-style model on numpy: predict(X) = X @ w + b, thresholded.
import numpy as np


class LinearClassifier:
    def __init__(self, w, b):
        self.w = np.asarray(w, dtype=np.float64)
        self.b = float(b)

    def predict(self, X):
        return (np.asarray(X, dtype=np.float64) @ self.w + self.b > 0).astype(np.int64)
