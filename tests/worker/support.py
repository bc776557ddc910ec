"""Helpers for worker tests: the test packages, and a shim process driven over a real socket."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from modelport.worker import protocol as p
from modelport.worker.channel import SocketChannel
from modelport.worker.frames import Frame

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "tests" / "packages"
WORKER_SRC = ROOT / "modelport" / "worker"


def copy_package(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(PACKAGES / name, target)
    return target


def install_copy(dest: Path) -> Path:
    """The worker as the runtime ships it: ``dest/modelport_worker``, .py files only."""
    shutil.copytree(WORKER_SRC, dest / "modelport_worker",
                    ignore=shutil.ignore_patterns("__pycache__", "*.toml"))
    return dest



def ends(frame: Frame) -> bool:
    """Whether ``frame`` is its request's last: a ``done``, or an ``output`` marked final
    (the usual unary answer, one frame)."""
    return frame.kind == p.DONE or (frame.kind == p.OUTPUT and frame.header.get("final") is True)

class ShimProcess:
    """``python -m modelport_worker.shim`` connected to a socket this test listens on."""

    def __init__(self, shim_root: Path, package_dir: Path, log_path: Path,
                 kind: str | None = None) -> None:
        self._dir = tempfile.mkdtemp(prefix="mp-shim-")
        path = os.path.join(self._dir, "w.sock")
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(1)
        self.server.settimeout(30)
        argv = [sys.executable, "-m", "modelport_worker.shim", "--socket", path,
                "--package", str(package_dir)]
        if kind:
            argv += ["--kind", kind]
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
               "PYTHONPATH": str(shim_root), "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, env=env, cwd=self._dir, stdout=self._log,
                                     stderr=self._log, stdin=subprocess.DEVNULL)
        conn, _ = self.server.accept()
        conn.settimeout(30)
        self.channel = SocketChannel(conn)

    def send(self, message: tuple[dict, list[bytes]]) -> None:
        self.channel.send(*message)

    def recv(self) -> Frame:
        frame = self.channel.recv()
        assert frame is not None, "the worker closed the connection"
        return frame

    def recv_until(self, kind: str, request_id: str | None = None) -> list[Frame]:
        """Frames up to and including the first of ``kind`` (for ``request_id``), logs
        skipped; ``done`` also stops at a final ``output`` (a request's end, see ``ends``)."""
        frames = []
        while True:
            frame = self.recv()
            if frame.kind == p.LOG:
                continue
            frames.append(frame)
            if (frame.kind == kind or (kind == p.DONE and ends(frame))) and (
                    request_id is None or frame.id == request_id):
                return frames

    def setup(self) -> Frame:
        hello = self.recv()
        assert hello.kind == p.HELLO
        self.send(p.setup())
        return self.recv_until(p.READY)[-1]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> int:
        try:
            self.channel.close()
        finally:
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
            self.server.close()
            self._log.close()
            shutil.rmtree(self._dir, ignore_errors=True)
        return code
