"""Size-rotated log files, and reading them back: since, tail, follow across a rotation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.gateway.rest.observability import parse_since
from services.telemetry import logfiles
from services.telemetry.logfiles import RotatingWriter, line_time, read, stamp


def test_a_file_rotates_before_it_would_pass_the_size_and_keeps_n_backups(
        tmp_path: Path) -> None:
    w = RotatingWriter(tmp_path / "app.log", max_bytes=1000, backups=2)
    for i in range(100):
        w.write_line(f"line {i:03d} " + "y" * 40, ts=1_700_000_000 + i)
    w.close()
    files = logfiles.files_oldest_first(tmp_path / "app.log")
    assert [f.name for f in files] == ["app.log.2", "app.log.1", "app.log"]
    assert all(f.stat().st_size <= 1000 for f in files)
    assert not (tmp_path / "app.log.3").exists()
    lines = read(tmp_path / "app.log")
    numbers = [int(ln.split("line ")[1][:3]) for ln in lines]
    assert numbers == list(range(numbers[0], 100))  # contiguous, oldest first, newest kept


def test_a_chunk_of_many_lines_is_split_between_files_at_line_ends(tmp_path: Path) -> None:
    w = RotatingWriter(tmp_path / "r.log", max_bytes=100, backups=5)
    w.write(b"".join(f"{i:02d} {'z' * 16}\n".encode() for i in range(20)))  # 400 bytes
    w.close()
    files = logfiles.files_oldest_first(tmp_path / "r.log")
    assert len(files) == 4 and all(f.stat().st_size == 100 for f in files)  # 5 lines each
    assert all(f.read_bytes().endswith(b"\n") for f in files)
    # a single line longer than the limit is written whole, in a file of its own
    w = RotatingWriter(tmp_path / "big.log", max_bytes=10, backups=1)
    w.write(b"short\n")
    w.write(b"x" * 50 + b"\n")
    w.close()
    assert (tmp_path / "big.log").read_bytes() == b"x" * 50 + b"\n"
    assert (tmp_path / "big.log.1").read_bytes() == b"short\n"


def test_read_since_and_tail_and_continuation_lines(tmp_path: Path) -> None:
    w = RotatingWriter(tmp_path / "a.log", max_bytes=0)
    w.write_line("old", ts=1000.0)
    w.write_line("new", ts=2000.5)
    w.write(b"Traceback (continuation without a time)\n")
    w.write_line("newest", ts=3000.0)
    w.close()
    path = tmp_path / "a.log"
    # a line without a time belongs with the one before it
    assert read(path, since=2000.0)[1:] == ["Traceback (continuation without a time)",
                                            read(path)[-1]]
    assert len(read(path, since=2000.0)) == 3
    assert len(read(path, since=2500.0)) == 1
    assert read(path, tail=1)[0].endswith("newest")
    assert read(path, since=99999.0) == []
    assert line_time(read(path)[1]) == 2000.5
    assert line_time('{"ts":"' + stamp(1234.25) + '","x":1}') == 1234.25
    assert line_time("no time here") is None


def test_follow_sees_appended_lines_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "f.log"
    w = RotatingWriter(path, max_bytes=200, backups=3)
    w.write_line("before following")

    async def main() -> list[str]:
        got: list[str] = []

        async def collect() -> None:
            async for line in logfiles.follow(path, poll_s=0.02):
                got.append(line)
                if line.endswith("line 19"):
                    return

        task = asyncio.create_task(collect())
        await asyncio.sleep(0.1)
        for i in range(20):
            w.write_line(f"line {i}")
            await asyncio.sleep(0.01)
        await asyncio.wait_for(task, 10)
        return got

    got = asyncio.run(main())
    assert [ln.split(" ", 1)[1] for ln in got] == [f"line {i}" for i in range(20)]
    assert (tmp_path / "f.log.1").exists()


@pytest.mark.parametrize(("raw", "expected"), [
    ("10m", 10_000 - 600), ("2h", 10_000 - 7200), ("30s", 10_000 - 30), ("1d", 10_000 - 86400),
    ("1500", 1500.0), ("1970-01-01T00:16:40Z", 1000.0), ("", None)])
def test_since_accepts_durations_times_and_unix_seconds(raw: str, expected: float | None
                                                        ) -> None:
    assert parse_since(raw, now=10_000) == expected


def test_a_bad_since_is_a_clear_error() -> None:
    from modelport.errors import ModelportError

    with pytest.raises(ModelportError) as err:
        parse_since("yesterday-ish")
    assert err.value.code == "logs.since_invalid" and "10m" in err.value.fix
