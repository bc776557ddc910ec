"""A model whose cost is fixed per call plus a little per item (like a GPU forward pass).

Each call sleeps CALL_S plus ITEM_S per input, so serving N requests one by one costs
N * CALL_S while one batch of N costs CALL_S once: the benchmark for adaptive batching.
The same file serves bench/models/batch-sleep (config.json declares "batching") and
bench/models/batch-sleep-unbatched (it does not, so only predict is called).
"""

import time

#: fixed cost of one call of the model, seconds
CALL_S = 0.005
#: extra cost per input in the call, seconds
ITEM_S = 0.00005


class Predictor:
    def setup(self):
        pass

    def predict(self, x):
        time.sleep(CALL_S + ITEM_S)
        return {"y": x * 2}

    def predict_batch(self, inputs):
        time.sleep(CALL_S + ITEM_S * len(inputs))
        return [{"y": item["x"] * 2} for item in inputs]
