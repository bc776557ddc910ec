import numpy as np


class Sum:
    def predict(self, x):
        assert isinstance(x, np.ndarray) and x.dtype == np.float32, (type(x), x.dtype)
        x *= 1  # the array is writable
        return {"doubled": x * 2, "row_sum": x.sum(axis=1),
                "label": "big" if float(x.sum()) > 10 else "small", "ignored": 1}
