import os


class Tagged:
    """Answers with the pid of the worker that ran the call: which replica answered."""

    def predict(self, x):
        return {"tag": str(os.getpid())}
