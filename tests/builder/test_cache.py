"""The build cache in-process: followers, failures shared and retried, records on disk."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from modelport.errors import Kind, ModelportError
from modelport.home import HomeLayout
from services.builder.cache import RESTARTED, BuildCache
from services.builder.settings import find_uv
from services.builder.venv import VenvBuilder

from .support import GATE_PACKAGE, GatedIndex, builder_environ


def make_cache(home: Path, uv_cache: Path, max_concurrent: int = 2) -> BuildCache:
    layout = HomeLayout(home)
    venvs = VenvBuilder(layout.envs, uv=find_uv(), default_python=sys.executable,
                        step_timeout_s=600, environ=builder_environ(uv_cache))
    cache = BuildCache(layout, venvs, max_concurrent)
    cache.load()
    return cache


async def until_done(cache: BuildCache, build_id: str) -> None:
    async with asyncio.timeout(240):
        while not cache.get(build_id).done:
            await asyncio.sleep(0.05)


async def until(predicate) -> None:  # noqa: ANN001
    async with asyncio.timeout(240):
        while not predicate():
            await asyncio.sleep(0.02)


def test_a_failed_build_fails_its_followers_and_the_next_start_retries(
        home: Path, uv_cache: Path, gated_index: GatedIndex) -> None:
    missing = gated_index.requirements().replace(f"{GATE_PACKAGE}==1.0", f"{GATE_PACKAGE}==9.9")

    async def scenario() -> None:
        cache = make_cache(home, uv_cache)
        leader = await cache.start(python="", requirements=missing, label="gate:1")
        await until(gated_index.arrived.is_set)
        follower = await cache.start(python="", requirements=missing, label="gate:2")
        assert follower.follows == leader.id and follower.cached
        gated_index.open()
        await until_done(cache, follower.id)
        await until_done(cache, leader.id)

        failed = cache.get(leader.id)
        assert failed.state == "failed"
        assert failed.error.startswith("pip install failed (exit 1)\n")
        assert "9.9" in failed.error
        assert cache.get(follower.id).error == failed.error
        text, state = cache.log_text(follower.id)
        assert state == "failed" and f"==> build {leader.id} failed" in text

        retry = await cache.start(python="", requirements=missing)
        assert retry.state == "queued" and not retry.cached and not retry.follows
        await until_done(cache, retry.id)
        await cache.close()

    asyncio.run(scenario())


def test_builds_queue_beyond_the_concurrency_limit(home: Path, uv_cache: Path,
                                                   gated_index: GatedIndex) -> None:
    async def scenario() -> None:
        cache = make_cache(home, uv_cache, max_concurrent=1)
        blocked = await cache.start(python="", requirements=gated_index.requirements())
        await until(gated_index.arrived.is_set)
        waiting = await cache.start(python="", requirements="")
        await asyncio.sleep(0.2)  # give it every chance to start; it must not
        assert cache.get(waiting.id).state == "queued"
        gated_index.open()
        await until_done(cache, waiting.id)
        assert cache.get(blocked.id).state == "succeeded"
        assert cache.get(waiting.id).state == "succeeded"
        await cache.close()

    asyncio.run(scenario())


def test_unfinished_records_on_disk_are_failed_on_load(home: Path, uv_cache: Path) -> None:
    builds = HomeLayout(home).builder / "builds"
    builds.mkdir(parents=True)
    for build_id, state in [("aaaa000000000001", "running"), ("aaaa000000000002", "queued"),
                            ("aaaa000000000003", "succeeded")]:
        (builds / f"{build_id}.json").write_text(json.dumps(
            {"id": build_id, "state": state, "env_key": "k", "started_at": 1.0}))
    (builds / "broken.json").write_text("{not json")

    cache = make_cache(home, uv_cache)

    assert cache.get("aaaa000000000001").state == "failed"
    assert cache.get("aaaa000000000001").error == RESTARTED
    assert cache.get("aaaa000000000002").state == "failed"
    assert cache.get("aaaa000000000003").state == "succeeded"
    on_disk = json.loads((builds / "aaaa000000000001.json").read_text())
    assert on_disk["state"] == "failed" and on_disk["finished_at"] > 0
    assert RESTARTED in cache.log_text("aaaa000000000001")[0]
    with pytest.raises(ModelportError) as err:
        cache.get("broken")
    assert err.value.kind == Kind.NOT_FOUND
