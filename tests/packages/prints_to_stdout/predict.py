import sys


class Noisy:
    def setup(self):
        print("setup: loading weights")
        # bytes that would look like a frame if stdout were the protocol channel
        sys.stdout.buffer.write(b"\x00\x00\x00\x10{\"kind\":\"ready\"}\n")
        sys.stdout.flush()

    def predict(self, text):
        for i in range(2000):
            print(f"predict line {i}: {text}")
        print("NOISY-MARKER", text)
        return {"ok": text}
