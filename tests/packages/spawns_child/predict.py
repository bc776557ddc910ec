import subprocess


class Spawner:
    def setup(self):
        self.child = subprocess.Popen(["sleep", "1000"])

    def predict(self):
        return {"child": self.child.pid}
