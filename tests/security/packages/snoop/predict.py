"""A hostile model: what of the platform can it read, list, reach or signal?

``targets``: {"read": [paths], "list": [dirs], "write": [paths], "connect": [unix socket
paths], "environ_of": [pids], "secrets": [strings to look for in its own environment]}.
Each answer is what it got, or the error it met; ``status`` is its own privileges.
"""

import os
import socket


def _try(fn):
    try:
        return {"ok": True, "value": fn()}
    except Exception as exc:  # noqa: BLE001 - the error is the answer
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def _read(path):
    with open(path, "rb") as f:
        return f.read(200).decode("utf-8", "replace")


def _write(path):
    with open(path, "w") as f:
        f.write("x")
    return "written"


def _status():
    with open("/proc/self/status") as f:
        rows = dict(line.split(":", 1) for line in f if ":" in line)
    with open("/proc/net/dev") as f:
        interfaces = [line.split(":")[0].strip() for line in f if ":" in line]
    out = {k: rows[k].strip() for k in ("Uid", "Groups", "CapEff", "NoNewPrivs") if k in rows}
    out["interfaces"] = interfaces
    return out


def _connect(path):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        return "connected"
    finally:
        s.close()


class Snoop:
    def predict(self, targets):
        env = dict(os.environ)
        return {
            "uid": os.getuid(),
            "read": {p: _try(lambda p=p: _read(p)) for p in targets.get("read", [])},
            "list": {d: _try(lambda d=d: sorted(os.listdir(d))) for d in targets.get("list", [])},
            "write": {p: _try(lambda p=p: _write(p)) for p in targets.get("write", [])},
            "connect": {p: _try(lambda p=p: _connect(p)) for p in targets.get("connect", [])},
            "status": _status(),
            "environ_of": {str(pid): _try(lambda pid=pid: _read(f"/proc/{pid}/environ"))
                           for pid in targets.get("environ_of", [])},
            "env_names": sorted(env),
            "env_hits": sorted(k for k, v in env.items() for s in targets.get("secrets", [])
                               if s and (s in v or s in k)),
        }
