"""The gateway's access log writes its lines in batches (``telemetry.AccessLog``): within
``FLUSH_S`` of the request, at once past ``BUFFER_BYTES``, on ``flush`` (a read through
the gateway) and on close; failed requests also go to error-access.log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from services.gateway.telemetry import AccessLog


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def entry(n: int, status: int = 200) -> dict:
    return {"ts": "2026-11-21T00:00:00.000Z", "request_id": f"r{n}", "service": "s",
            "status": status}


def test_lines_are_batched_and_reach_their_files_within_the_flush_interval(
        tmp_path: Path) -> None:
    async def main() -> None:
        log = AccessLog(tmp_path, max_bytes=0, backups=0)
        log.record(entry(1))
        log.record(entry(2, status=503))
        assert lines(tmp_path / "access.log") == []  # waiting, not lost
        await asyncio.sleep(AccessLog.FLUSH_S * 3)
        assert [e["request_id"] for e in lines(tmp_path / "access.log")] == ["r1", "r2"]
        assert [e["request_id"] for e in lines(tmp_path / "error-access.log")] == ["r2"]
        log.record(entry(3))
        log.flush()  # what a read of the logs through the gateway does first
        assert [e["request_id"] for e in lines(tmp_path / "access.log")][-1] == "r3"
        log.record(entry(4))
        log.close()  # the gateway stopping
        assert [e["request_id"] for e in lines(tmp_path / "access.log")][-1] == "r4"

    asyncio.run(main())


def test_a_full_buffer_is_written_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        log = AccessLog(tmp_path, max_bytes=0, backups=0)
        n = 0
        while not (tmp_path / "access.log").exists():
            n += 1
            log.record(entry(n))
            assert n * 60 < 2 * AccessLog.BUFFER_BYTES  # written by the time it fills
        assert len(lines(tmp_path / "access.log")) == n
        log.close()

    asyncio.run(main())


def test_without_an_event_loop_a_line_is_written_at_once(tmp_path: Path) -> None:
    log = AccessLog(tmp_path, max_bytes=0, backups=0)
    log.record(entry(1))
    assert [e["request_id"] for e in lines(tmp_path / "access.log")] == ["r1"]
    log.close()
