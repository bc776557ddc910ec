import os


class Killed:
    def predict(self, text):
        if text == "die":
            os._exit(1)
        return {"ok": text, "pid": os.getpid()}
