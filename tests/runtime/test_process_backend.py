"""The process backend: a clean environment, its own process group, the replica log."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from modelport.errors import Kind, ModelportError
from modelport.worker.values import Value
from services.runtime.backends.process import ProcessBackend, build_env, socket_path
from tests.runtime.support import alive, gone, link_predict, make_spec, run


def test_the_worker_environment_is_built_from_scratch(
        shim_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPORT_SECRET_TEST", "platform-only-secret")

    async def main() -> None:
        spec = make_spec("env_probe", tmp_path, env={"LOG_LEVEL": "debug"})
        replica_dir = tmp_path / "replicas" / spec.replica_id
        handle = await ProcessBackend(shim_root).start(spec, replica_dir)
        try:
            await handle.link.setup()
            seen = (await link_predict(handle.link,
                "r", {"name": Value.of_text("MODELPORT_SECRET_TEST")})).decoded()
            assert seen["value"] is None
            assert "platform-only-secret" not in handle.log_path.read_text()
            level = (await link_predict(handle.link, "r2", {"name": Value.of_text("LOG_LEVEL")}))
            assert level.decoded()["value"] == "debug"
        finally:
            await handle.stop(grace_s=2)
        bin_dir = str(Path(sys.executable).parent)
        assert seen["PATH"] == f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"
        assert seen["HOME"] == str(replica_dir / "home")
        assert seen["PYTHONPATH"] == str(shim_root)
        assert seen["cwd"] == str(spec.package_dir)
        assert seen["pgid"] == seen["pid"]  # its own process group
        assert set(seen["names"]) <= set(build_env(spec, shim_root, replica_dir)) | {
            "PWD", "LC_CTYPE", "_"}

    run(main())


def test_spec_env_extends_path_and_pythonpath(shim_root: Path, tmp_path: Path) -> None:
    spec = make_spec("echo", tmp_path, env={"PATH": "/opt/tools", "PYTHONPATH": "/opt/lib"})
    env = build_env(spec, shim_root, tmp_path)
    assert env["PATH"] == f"{Path(sys.executable).parent}:/opt/tools"
    assert env["PYTHONPATH"] == f"{shim_root}:/opt/lib"
    assert env["LANG"] == "C.UTF-8" and env["PYTHONUNBUFFERED"] == "1"


def test_stop_kills_the_whole_process_group(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        spec = make_spec("spawns_child", tmp_path)
        handle = await ProcessBackend(shim_root).start(spec, tmp_path / "r")
        await handle.link.setup()
        child = (await link_predict(handle.link, "r", {})).decoded()["child"]
        assert alive(child) and os.getpgid(child) == handle.pid
        await handle.stop(grace_s=2)
        assert await gone(handle.pid)
        assert await gone(child)

    run(main())


def test_a_worker_that_ignores_shutdown_is_terminated(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        spec = make_spec("slow", tmp_path)
        handle = await ProcessBackend(shim_root).start(spec, tmp_path / "r")
        await handle.link.setup()
        import asyncio

        busy = asyncio.create_task(link_predict(handle.link, "r", {"seconds": Value.of_json(60)}))
        await asyncio.sleep(0.2)
        code = await handle.stop(grace_s=0.3)  # shutdown waits for predict: SIGTERM follows
        assert code == -signal.SIGTERM
        with pytest.raises(ModelportError) as err:
            await busy
        assert err.value.code == "worker.crashed"
        assert "was killed by SIGTERM" in err.value.message

    run(main())


def test_a_worker_that_dies_before_connecting_is_reported_with_its_log(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        spec = make_spec("echo", tmp_path, python="/bin/false")
        with pytest.raises(ModelportError) as err:
            await ProcessBackend(shim_root).start(spec, tmp_path / "r")
        assert err.value.code == "replica.exited_on_start"
        assert "exited (code 1) before connecting" in err.value.message

        broken = tmp_path / "broken_shim"
        (broken / "modelport_worker").mkdir(parents=True)
        (broken / "modelport_worker" / "__init__.py").write_text("")
        (broken / "modelport_worker" / "shim.py").write_text("raise SystemExit('no shim here')\n")
        with pytest.raises(ModelportError) as err:
            await ProcessBackend(broken).start(make_spec("echo", tmp_path), tmp_path / "r2")
        assert "no shim here" in err.value.message  # the log's tail

    run(main())


def test_a_missing_interpreter_is_a_clear_error(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        spec = make_spec("echo", tmp_path, python=str(tmp_path / "nope" / "python"))
        with pytest.raises(ModelportError) as err:
            await ProcessBackend(shim_root).start(spec, tmp_path / "r")
        assert err.value.kind == Kind.UNAVAILABLE and err.value.code == "replica.spawn_failed"

    run(main())


def test_long_replica_dirs_get_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    assert len(str(socket_path(deep))) <= 100
    assert socket_path(deep) != socket_path(tmp_path / ("e" * 120))
    assert socket_path(Path("/tmp/r")) == Path("/tmp/r/worker.sock")


def test_workers_start_in_a_deep_directory(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        spec = make_spec("echo", tmp_path)
        handle = await ProcessBackend(shim_root).start(spec, tmp_path / ("x" * 100) / "r")
        try:
            await handle.link.setup()
            assert (await link_predict(handle.link, "r", {"text": Value.of_text("ok")})).decoded()[
                "text"] == "ok"
        finally:
            await handle.stop(grace_s=2)

    run(main())


def test_package_files_do_not_shadow_the_stdlib_the_shim_uses(
        shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        spec = make_spec("shadows_stdlib", tmp_path)
        handle = await ProcessBackend(shim_root).start(spec, tmp_path / "r")
        try:
            await handle.link.setup()
            result = await link_predict(handle.link, "r", {"text": Value.of_text("ok")})
            assert result.decoded()["echo"] == "ok"
        finally:
            await handle.stop(grace_s=2)

    run(main())
