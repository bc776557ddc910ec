import time


class Slow:
    def predict(self, seconds):
        time.sleep(seconds)
        return {"slept": seconds}
