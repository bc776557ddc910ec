"""The file-contract kind: write inputs to files, run ``entrypoint``, read the output file.

config.json (the format users already have)::

    {"name": "...", "entrypoint": "python inference.py", "timeout_s": 60,
     "input":  [{"path": "input/1.jpeg", "type": "image", "name": "image"?}, ...],
     "output": [{"path": "output/output.json", "type": "json"}]}

Per request: a fresh working copy of the package in a temporary directory (large files
hard-linked, small ones copied; a path is unlinked before anything is written to it, so
the original package is never modified), each input written to its ``path`` (the request
field is the input's ``name`` if given, else its ``path``), ``entrypoint`` run there
with the environment's ``bin`` first on PATH, then the output read back and the copy
removed. The child's stdout and stderr go to this worker's stderr, the replica log.

Stdlib only, Python >= 3.8.
"""

from __future__ import annotations

import collections
import json
import os
import posixpath
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from ..protocol import ErrorCode
from ..values import Result, Value
from .base import ConfigError, RequestContext, ShimError, decode_base64, invalid_input

DEFAULT_TIMEOUT_S = 60.0
#: files at least this large are hard-linked into the working copy, smaller ones copied
#: (scripts that rewrite a small file in place then cannot reach the original)
LINK_MIN_BYTES = 1024 * 1024
#: how many trailing stderr lines an entrypoint failure reports
TAIL_LINES = 20
INPUT_TYPES = ("image", "text", "file", "json")


def detect(config: dict[str, Any]) -> bool:
    return isinstance(config.get("entrypoint"), str) and "predictor" not in config


def _safe_path(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"{where}.path must be a relative file path")
    norm = posixpath.normpath(raw.replace("\\", "/"))
    if norm.startswith("/") or norm == ".." or norm.startswith("../") or norm == ".":
        raise ConfigError(f"{where}.path {raw!r} must stay inside the package")
    return norm


class Adapter:
    kind = "file_contract"
    streaming = False

    def __init__(self, root: str, config: dict[str, Any]) -> None:
        self.root = os.path.abspath(root)
        self.config = config
        self.argv = shlex.split(config.get("entrypoint") or "")
        if not self.argv:
            raise ConfigError("\"entrypoint\" must be a command such as \"python inference.py\"")
        timeout = config.get("timeout_s")
        timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ConfigError("\"timeout_s\" must be a positive number of seconds")
        self.timeout_s = float(timeout)
        inputs = config.get("input") or []
        if not isinstance(inputs, list):
            raise ConfigError("\"input\" must be a list of {path, type}")
        self.inputs = []  # (field name, relative path, type)
        for i, raw in enumerate(inputs):
            where = f"input[{i}]"
            if not isinstance(raw, dict):
                raise ConfigError(f"{where} must be an object with \"path\" and \"type\"")
            path = _safe_path(raw.get("path"), where)
            kind = raw.get("type", "text")
            if kind not in INPUT_TYPES:
                raise ConfigError(f"{where}.type is {kind!r}; use one of {', '.join(INPUT_TYPES)}")
            self.inputs.append((raw.get("name") or raw["path"], path, kind))
        outputs = config.get("output") or []
        if not isinstance(outputs, list) or not outputs:
            raise ConfigError("\"output\" must list the file the entrypoint writes, e.g. "
                              "[{\"path\": \"output/output.json\", \"type\": \"json\"}]")
        self.outputs = []  # (field name, relative path, type)
        for i, raw in enumerate(outputs):
            where = f"output[{i}]"
            if not isinstance(raw, dict):
                raise ConfigError(f"{where} must be an object with \"path\" and \"type\"")
            self.outputs.append((raw.get("name") or raw["path"], _safe_path(raw.get("path"),
                                 where), raw.get("type", "json")))
        self.bin_dir = os.path.dirname(sys.executable)

    def setup(self) -> None:
        if not os.path.isdir(self.root):
            raise ConfigError(f"package directory {self.root} does not exist")

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ requests

    def predict(self, inputs: dict[str, Value], ctx: RequestContext) -> Result:
        expected = [name for name, _, _ in self.inputs]
        unknown = sorted(set(inputs) - set(expected))
        if unknown:
            raise invalid_input(f"unexpected input {', '.join(repr(n) for n in unknown)}; "
                                f"this model takes: {', '.join(expected)}")
        missing = [name for name in expected if name not in inputs]
        if missing:
            raise invalid_input(f"missing input {', '.join(repr(n) for n in missing)}; "
                                f"this model takes: {', '.join(expected)}")
        workdir = tempfile.mkdtemp(prefix="modelport-req-")
        try:
            with ctx.phase("preprocess"):
                copy_tree(self.root, workdir)
                for name, rel, kind in self.inputs:
                    path = _inside(workdir, rel)
                    write_fresh(path, _input_bytes(name, kind, inputs[name]))
                for _, rel, _ in self.outputs:  # a stale output in the package is no answer
                    _unlink(_inside(workdir, rel))
            with ctx.phase("predict"):
                self._run(workdir, ctx)
            with ctx.phase("postprocess"):
                return self._read_outputs(workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, workdir: str, ctx: RequestContext) -> None:
        env = dict(os.environ)
        env["PATH"] = self.bin_dir + os.pathsep + env.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.pop("PYTHONPATH", None)  # the shim's own path is no business of the entrypoint
        timeout = ctx.remaining(self.timeout_s)
        try:
            proc = subprocess.Popen(self.argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                    stdout=sys.stderr.fileno(), stderr=subprocess.PIPE)
        except OSError as exc:
            raise ShimError(ErrorCode.ENTRYPOINT_FAILED, "EntrypointFailed",
                            f"cannot run entrypoint {self.config['entrypoint']!r}: {exc}"
                            ) from None
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        pump = threading.Thread(target=_tee, args=(proc.stderr, tail), daemon=True)
        pump.start()
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if ctx.cancelled.is_set():
                    raise ShimError(ErrorCode.CANCELLED, "Cancelled", "the request was cancelled")
                if time.monotonic() >= deadline:
                    raise ShimError(ErrorCode.TIMEOUT, "Timeout",
                                    f"entrypoint {self.config['entrypoint']!r} did not finish "
                                    f"within {timeout:g}s (config.json \"timeout_s\")")
                try:
                    proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            pump.join(timeout=5)
        if proc.returncode != 0:
            detail = "\n".join(tail).strip()
            how = (f"was killed by signal {-proc.returncode}" if proc.returncode < 0
                   else f"exited with code {proc.returncode}")
            raise ShimError(ErrorCode.ENTRYPOINT_FAILED, "EntrypointFailed",
                            f"entrypoint {self.config['entrypoint']!r} {how}"
                            + (f"; last lines of stderr:\n{detail}" if detail else
                               " and wrote nothing to stderr"))

    def _read_outputs(self, workdir: str) -> Result:
        found = []
        for name, rel, kind in self.outputs:
            path = _inside(workdir, rel)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                raise ShimError(ErrorCode.OUTPUT_INVALID, "OutputMissing",
                                f"entrypoint exited 0 but did not write {rel} (config.json "
                                "\"output\")") from None
            if kind == "json":
                data = _checked_json(rel, data)
            found.append((name, kind, data))
        if len(found) == 1:
            _, kind, data = found[0]
            return Result("json", data) if kind == "json" else Result.of_bytes(data)
        if any(kind != "json" for _, kind, _ in found):
            raise ShimError(ErrorCode.OUTPUT_INVALID, "OutputInvalid",
                            "several outputs must all be of type json")
        body = b",".join(json.dumps(name).encode("utf-8") + b":" + data for name, _, data in found)
        return Result("json", b"{" + body + b"}")


def _checked_json(rel: str, data: bytes) -> bytes:
    """The file's bytes when they are valid JSON; re-encoded only if they hold NaN/Infinity."""
    bad = []

    def constant(token: str) -> Any:
        bad.append(token)
        return None

    try:
        value = json.loads(data.decode("utf-8-sig"), parse_constant=constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ShimError(ErrorCode.OUTPUT_INVALID, "OutputInvalid",
                        f"{rel} is not valid JSON: {exc}") from None
    if bad or data.startswith(b"\xef\xbb\xbf"):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return data.strip()


def _input_bytes(name: str, kind: str, value: Value) -> bytes:
    if value.kind == "bytes":
        return bytes(value.payload)
    if value.kind == "raw_json":
        decoded = value.decoded()
    else:
        decoded = value.payload
    if isinstance(decoded, str):
        if kind in ("image", "file"):
            return decode_base64(decoded, f"input {name!r} ({kind})")
        return decoded.encode("utf-8")
    if kind in ("image", "file"):
        raise invalid_input(f"input {name!r} is a {kind}: send bytes or base64 text")
    return json.dumps(decoded, ensure_ascii=False).encode("utf-8")


def _tee(stream: Any, tail: collections.deque[str]) -> None:
    """Copy the child's stderr to ours (the replica log), keeping the last lines."""
    out = getattr(sys.stderr, "buffer", None)
    for line in iter(stream.readline, b""):
        if out is not None:
            out.write(line)
            out.flush()
        tail.append(line.decode("utf-8", "replace").rstrip("\n"))
    stream.close()


def _inside(workdir: str, rel: str) -> str:
    """``workdir/rel``, refusing a path that a symlink in the package leads outside."""
    path = os.path.join(workdir, rel)
    real_dir = os.path.realpath(os.path.dirname(path))
    base = os.path.realpath(workdir)
    if real_dir != base and not real_dir.startswith(base + os.sep):
        raise ShimError(ErrorCode.INVALID_INPUT, "InvalidPackage",
                        f"{rel} leads outside the package through a symlink")
    return path


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_fresh(path: str, data: bytes) -> None:
    """Write ``path`` as a new file: any hard link to the original is unlinked first."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    _unlink(path)
    with open(path, "xb") as f:
        f.write(data)


def copy_tree(src: str, dst: str) -> None:
    """A working copy of ``src`` in (existing) ``dst``: big files hard-linked, small copied."""
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for d in dirnames:
            s = os.path.join(dirpath, d)
            if os.path.islink(s):
                os.symlink(os.readlink(s), os.path.join(target, d))
            else:
                os.mkdir(os.path.join(target, d))
        for name in filenames:
            s = os.path.join(dirpath, name)
            t = os.path.join(target, name)
            if os.path.islink(s):
                os.symlink(os.readlink(s), t)
                continue
            if os.path.getsize(s) >= LINK_MIN_BYTES:
                try:
                    os.link(s, t)
                    continue
                except OSError:
                    pass
            shutil.copy2(s, t)
