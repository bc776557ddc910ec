class Tensor:
    def predict(self, x):
        return {
            "type": type(x).__name__,
            "dtype": str(x.dtype),
            "shape": list(x.shape),
            "sum": x.sum(),
            "doubled": x * 2,
            "nan": x.dtype.type("nan"),
        }
