"""Replica lifecycle with real worker processes: ready, crash and restart, setup failure, stop."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from modelport.errors import Kind, ModelportError
from modelport.worker.values import Value
from services.runtime.backends.process import ProcessBackend
from services.runtime.dataplane import calls
from services.runtime.shim_install import install_shim
from services.runtime.supervisor import Supervisor, restart_delay
from tests.runtime.support import gone, make_spec, replica_predict, run, wait_state


def supervisor(tmp_path: Path, shim_root: Path, **kw: float) -> Supervisor:
    kw.setdefault("restart_initial_s", 0.1)
    return Supervisor(tmp_path / "work", ProcessBackend(shim_root), **kw)  # type: ignore[arg-type]


def test_start_returns_at_once_then_the_replica_becomes_ready(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root)
        try:
            info = await sup.start(make_spec("echo", tmp_path, replica_id="echo-1"))
            assert info.state == "starting" and info.restarts == 0
            assert info.log_path == tmp_path / "work" / "replicas" / "echo-1" / "replica.log"
            ready = await wait_state(sup, "echo-1", "ready")
            assert ready.pid and ready.started_at and ready.message == ""
            assert [r.id for r in sup.list()] == ["echo-1"]
            result = await replica_predict(sup, "echo-1", "req", {"text": Value.of_text("hi")})
            assert result.decoded()["text"] == "hi"
            chunks = [c async for c in calls.stream(sup, "echo-1", "req2",
                                                          {"text": Value.of_text("s")})]
            assert len(chunks) == 1 and chunks[0].decoded()["text"] == "s"
        finally:
            await sup.close()

    run(main())


def test_requests_to_missing_or_unready_replicas(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root)
        try:
            with pytest.raises(ModelportError) as err:
                await replica_predict(sup, "nope", "r", {})
            assert err.value.kind == Kind.NOT_FOUND
            assert sup.get("nope") is None
            await sup.start(make_spec("setup_raises", tmp_path, replica_id="bad"))
            await wait_state(sup, "bad", "failed")
            with pytest.raises(ModelportError) as err:
                await replica_predict(sup, "bad", "r", {"x": Value.of_text("x")})
            assert err.value.kind == Kind.UNAVAILABLE and err.value.code == "replica.not_ready"
            assert "setup raised ValueError" in err.value.message
            with pytest.raises(ModelportError) as err:
                await sup.start(make_spec("echo", tmp_path, replica_id="bad"))
            assert err.value.kind == Kind.CONFLICT
            with pytest.raises(ModelportError) as err:
                await sup.start(make_spec("echo", tmp_path, replica_id="../escape"))
            assert err.value.kind == Kind.INVALID
        finally:
            await sup.close()

    run(main())


def test_a_crash_fails_its_request_then_the_replica_restarts_and_serves(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root)
        try:
            await sup.start(make_spec("killed_in_predict", tmp_path, replica_id="k"))
            first = await wait_state(sup, "k", "ready")
            with pytest.raises(ModelportError) as err:
                await replica_predict(sup, "k", "dies", {"text": Value.of_text("die")})
            assert err.value.code == "worker.crashed"
            assert err.value.message == (
                "the model process exited (code 1) while handling this request")
            info = await wait_state(sup, "k", "restarting")
            assert info.message.startswith("exited with code 1")
            again = await wait_state(sup, "k", "ready")
            assert again.restarts == 1 and again.pid != first.pid
            result = await replica_predict(sup, "k", "next", {"text": Value.of_text("hello")})
            assert result.decoded()["ok"] == "hello"
            assert "exited with code 1, restarting in 0.1s" in info.log_path.read_text()
        finally:
            await sup.close()

    run(main())


def test_backoff_doubles_and_resets_after_a_healthy_period(
        shim_root: Path, tmp_path: Path) -> None:
    assert [restart_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]

    async def crash(sup: Supervisor, restarts: int) -> str:
        with pytest.raises(ModelportError):
            await replica_predict(sup, "k", f"die-{restarts}", {"text": Value.of_text("die")})
        info = await wait_state(sup, "k", "restarting")
        await wait_state(sup, "k", "ready", where=lambda i: i.restarts == restarts)
        return info.message

    async def main() -> None:
        sup = supervisor(tmp_path, shim_root, healthy_reset_s=60)
        try:
            await sup.start(make_spec("killed_in_predict", tmp_path, replica_id="k"))
            await wait_state(sup, "k", "ready")
            assert (await crash(sup, 1)).endswith("restarting in 0.1s")
            assert (await crash(sup, 2)).endswith("restarting in 0.2s")
            sup.healthy_reset_s = 0.3
            await asyncio.sleep(0.5)  # healthy for longer than healthy_reset_s
            assert (await crash(sup, 3)).endswith("restarting in 0.1s")
        finally:
            await sup.close()

    run(main())


def test_setup_failure_is_failed_with_the_reason_and_retried(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root)
        try:
            await sup.start(make_spec("setup_raises", tmp_path, replica_id="s"))
            info = await wait_state(sup, "s", "failed")
            assert info.message.startswith(
                "setup raised ValueError: weights file model.bin is missing")
            retried = await wait_state(sup, "s", "failed", where=lambda i: i.restarts >= 2)
            assert "setup raised ValueError" in retried.message
            log = info.log_path.read_text()
            assert "Traceback (most recent call last)" in log
            assert 'raise ValueError("weights file model.bin is missing")' in log
        finally:
            await sup.close()

    run(main())


def test_import_errors_fail_setup_with_the_module_name(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root)
        try:
            await sup.start(make_spec("import_error", tmp_path, replica_id="i"))
            info = await wait_state(sup, "i", "failed")
            assert info.message.startswith(
                "setup raised ModuleNotFoundError: No module named "
                "'modelport_test_package_that_is_not_installed'")
        finally:
            await sup.close()

    run(main())


def test_timeouts_are_deadline_errors(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root)
        try:
            await sup.start(make_spec("slow", tmp_path, replica_id="slow", timeout_s=0.3))
            await wait_state(sup, "slow", "ready")
            with pytest.raises(ModelportError) as err:
                # the spec's default timeout
                await replica_predict(sup, "slow", "r", {"seconds": Value.of_json(5)})
            assert err.value.kind == Kind.DEADLINE
        finally:
            await sup.close()

    run(main())


def test_stop_ends_the_replica_and_its_processes(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root)
        try:
            await sup.start(make_spec("spawns_child", tmp_path, replica_id="p"))
            ready = await wait_state(sup, "p", "ready")
            child = (await replica_predict(sup, "p", "r", {})).decoded()["child"]
            stopped = await sup.stop("p")
            assert stopped.state == "stopped"
            assert await gone(ready.pid or 0) and await gone(child)
            info = sup.get("p")
            assert info is not None and info.state == "stopped"
            with pytest.raises(ModelportError):
                await replica_predict(sup, "p", "r2", {})
            # a stopped replica's id can be started again
            await sup.start(make_spec("spawns_child", tmp_path, replica_id="p"))
            await wait_state(sup, "p", "ready")
        finally:
            await sup.close()
        assert {r.state for r in sup.list()} == {"stopped"}

    run(main())


def test_stop_during_backoff_and_during_start(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root, restart_initial_s=30)
        try:
            await sup.start(make_spec("setup_raises", tmp_path, replica_id="s"))
            await wait_state(sup, "s", "failed")
            assert (await sup.stop("s")).state == "stopped"  # not after the 30s backoff
            await sup.start(make_spec("echo", tmp_path, replica_id="e"))
            assert (await sup.stop("e")).state == "stopped"  # still starting
        finally:
            await sup.close()

    run(main())


def test_a_hung_worker_is_killed_by_health_checks_and_restarted(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = supervisor(tmp_path, shim_root, health_interval_s=0.1, health_timeout_s=0.2,
                         health_failures=2)
        try:
            await sup.start(make_spec("echo", tmp_path, replica_id="h"))
            ready = await wait_state(sup, "h", "ready")
            assert ready.pid is not None
            os.kill(ready.pid, signal.SIGSTOP)  # alive, but answers nothing
            info = await wait_state(sup, "h", "restarting")
            assert info.message.startswith("stopped answering health checks")
            await wait_state(sup, "h", "ready")
            back = await replica_predict(sup, "h", "r", {"text": Value.of_text("back")})
            assert back.decoded()["text"] == "back"
        finally:
            await sup.close()

    run(main())


def test_the_default_backend_installs_the_shim(tmp_path: Path) -> None:
    async def main() -> None:
        sup = Supervisor(tmp_path / "work", restart_initial_s=0.1)
        try:
            await sup.start(make_spec("echo", tmp_path, replica_id="d"))
            await wait_state(sup, "d", "ready")
            assert (tmp_path / "work" / "shim" / "modelport_worker" / "shim.py").is_file()
        finally:
            await sup.close()

    run(main())


def test_install_shim_is_idempotent_and_refreshes_stale_copies(tmp_path: Path) -> None:
    dest = install_shim(tmp_path)
    assert dest == tmp_path / "modelport_worker"
    assert (dest / "kinds" / "predictor.py").is_file() and not (dest / "ruff.toml").exists()
    marker = dest / ".modelport-shim-digest"
    stamp = marker.stat().st_mtime_ns
    assert install_shim(tmp_path) == dest and marker.stat().st_mtime_ns == stamp
    (dest / "shim.py").write_text("# an older shim\n")
    marker.write_text("older\n")
    install_shim(tmp_path)
    assert "def main" in (dest / "shim.py").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["modelport_worker"]
