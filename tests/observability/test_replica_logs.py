"""A real worker's output through the runtime: timestamped, rotated by size, read back by
replica or by service, followed; and the phase timings the worker reports."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelport.worker.values import Value
from services.runtime import replica_log
from services.runtime.backends.process import ProcessBackend
from services.runtime.dataplane import calls
from services.runtime.supervisor import Supervisor
from services.telemetry import logfiles
from tests.runtime.support import log_text, make_spec, replica_predict, run, wait_state

MAX = 50_000


@pytest.fixture
def small_logs() -> Iterator[None]:
    replica_log.configure(MAX, 2)
    yield
    replica_log.configure(logfiles.DEFAULT_MAX_BYTES, logfiles.DEFAULT_BACKUPS)


def test_worker_output_is_stamped_rotated_and_read_back(
        shim_root: Path, tmp_path: Path, small_logs: None) -> None:
    async def main() -> None:
        sup = Supervisor(tmp_path / "work", ProcessBackend(shim_root))
        try:
            await sup.start(make_spec("prints_to_stdout", tmp_path, replica_id="noisy-1"))
            await wait_state(sup, "noisy-1", "ready")
            for i in range(3):  # 2000 lines of ~40 bytes each time
                result = await replica_predict(sup, "noisy-1", f"r{i}",
                                               {"text": Value.of_text(f"t{i}")})
                assert result.decoded() == {"ok": f"t{i}"}
            d = tmp_path / "work" / "replicas" / "noisy-1"
            # stdout reaches the log through its own pipe, which may trail the answer
            await log_text(d / "replica.log", "NOISY-MARKER t2")
            files = logfiles.files_oldest_first(d / "replica.log")
            assert [f.name for f in files] == ["replica.log.2", "replica.log.1", "replica.log"]
            assert all(f.stat().st_size <= MAX for f in files)
            # the last request's marker is in the newest file, with a time on each line
            newest = (d / "replica.log").read_text().splitlines()
            marker = next(ln for ln in newest if "NOISY-MARKER t2" in ln)
            assert logfiles.line_time(marker) is not None
            # by replica, or by service (its replica.json says which service it serves)
            srcs = replica_log.sources(tmp_path / "work", service="prints_to_stdout")
            assert [(rid, v) for rid, v, _ in srcs] == [("noisy-1", 1)]
            assert replica_log.sources(tmp_path / "work", replica_id="noisy-1") == srcs
            assert replica_log.sources(tmp_path / "work", service="other") == []
            tail = replica_log.read_many(srcs, tail=3)
            assert [t[3].split(" ", 1)[1] for t in tail][-1].startswith("NOISY-MARKER t2")
            assert [t[0] for t in tail] == sorted(t[0] for t in tail)

            # following: a new request's lines arrive as they are written
            async def follow() -> str:
                async for _rid, _v, line in replica_log.follow_many(
                        lambda: srcs, srcs, rescan_s=0.2):
                    if "NOISY-MARKER followed" in line:
                        return line
                raise AssertionError("follow ended")

            follower = asyncio.create_task(follow())
            await asyncio.sleep(0.5)
            await replica_predict(sup, "noisy-1", "r9", {"text": Value.of_text("followed")})
            line = await asyncio.wait_for(follower, 20)
            assert line.split(" ", 1)[1] == "NOISY-MARKER followed"
        finally:
            await sup.close()
        # the supervisor's own notes go through the same writer
        assert "=== modelport: stopped ===" in (d / "replica.log").read_text()

    run(main())


def test_the_worker_reports_its_phase_timings(shim_root: Path, tmp_path: Path) -> None:
    async def main() -> None:
        sup = Supervisor(tmp_path / "work", ProcessBackend(shim_root))
        try:
            await sup.start(make_spec("echo", tmp_path, replica_id="echo-1"))
            await wait_state(sup, "echo-1", "ready")
            result = await replica_predict(sup, "echo-1", "req", {"text": Value.of_text("hi")})
            timings = result.timings
            assert [p[0] for p in timings["phases"]] == ["queue", "preprocess", "predict",
                                                         "postprocess"]
            offsets = [p[1] for p in timings["phases"]]
            assert offsets == sorted(offsets) and all(p[2] >= 0 for p in timings["phases"])
            assert timings["t0"] > 1.6e9  # wall-clock seconds, so spans line up across hosts
            got: list[object] = []
            chunks = [c async for c in calls.stream(
                sup, "echo-1", "req2", {"text": Value.of_text("s")}, on_timings=got.append)]
            assert len(chunks) == 1 and got and got[0]["phases"][0][0] == "queue"
        finally:
            await sup.close()

    run(main())
