import os
import sys


class Env:
    def predict(self, name):
        return {
            "value": os.environ.get(name),
            "names": sorted(os.environ),
            "PATH": os.environ.get("PATH"),
            "HOME": os.environ.get("HOME"),
            "PYTHONPATH": os.environ.get("PYTHONPATH"),
            "cwd": os.getcwd(),
            "executable": sys.executable,
            "pgid": os.getpgid(0),
            "pid": os.getpid(),
        }
