"""The builder as its callers see it: a real `python -m services.builder` over gRPC."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from modelport.errors import GRPC_METADATA_KEY
from modelport.home import HomeLayout
from modelport.v1 import builder_pb2

from .support import GATE_MODULE, BuilderProcess, GatedIndex, env_dirs, run_python

SERVICE = "modelport.v1.Builder"


def error_of(err: grpc.RpcError) -> dict:
    for key, value in err.trailing_metadata() or ():
        if key == GRPC_METADATA_KEY:
            return json.loads(value)
    raise AssertionError(f"no {GRPC_METADATA_KEY} metadata on {err}")


def test_empty_requirements_build_a_plain_env_whose_python_runs(builder: BuilderProcess,
                                                                  home: Path) -> None:
    started = builder.start("", label="echo:1")
    assert started.state in ("queued", "running")
    assert started.id and started.env_key

    build = builder.wait(started.id)

    assert build.state == "succeeded", build.error
    assert not build.cached
    env = HomeLayout(home).envs / build.env_key
    assert Path(build.artifact) == env / "bin" / "python"
    assert Path(run_python(build.artifact, "import sys; print(sys.prefix)")) == env
    marker = json.loads((env / ".modelport-env.json").read_text())
    assert marker["key"] == build.env_key and marker["requirements"] == ""
    assert build.finished_at >= build.started_at > 0


def test_real_requirement_installs_and_imports_in_the_env(builder: BuilderProcess) -> None:
    build = builder.wait(builder.start("six\n", label="six-model:1").id)

    assert build.state == "succeeded", build.error
    assert run_python(build.artifact, "import six; print(six.__name__)") == "six"
    log = builder.log(build.id)
    assert log.state == "succeeded"
    assert "==> [1/2] create virtualenv" in log.text
    assert "==> [2/2] pip install" in log.text
    assert "six" in log.text and "==> build succeeded" in log.text


def test_same_requirements_again_are_cached_without_a_new_env(builder: BuilderProcess,
                                                              home: Path) -> None:
    first = builder.wait(builder.start("six\n", label="m:1").id)
    assert first.state == "succeeded", first.error
    dirs = env_dirs(home)

    # the same requirements written differently (comment, blank line) are the same env
    again = builder.start("# deps\n\nsix   # for py2/3\n", label="m:2")

    assert again.state == "succeeded" and again.cached
    assert again.env_key == first.env_key and again.artifact == first.artifact
    assert again.id != first.id
    assert env_dirs(home) == dirs
    assert "pip install" not in builder.log(again.id).text


def test_two_concurrent_builds_of_one_key_build_one_env(builder: BuilderProcess,
                                                        home: Path) -> None:
    request = builder_pb2.BuildRequest(target="process", requirements="six\n")
    calls = [builder.stub.StartBuild.future(request, timeout=60) for _ in range(2)]
    ids = [call.result().id for call in calls]

    builds = [builder.wait(build_id) for build_id in ids]

    assert [b.state for b in builds] == ["succeeded", "succeeded"], [b.error for b in builds]
    assert builds[0].env_key == builds[1].env_key
    assert builds[0].artifact == builds[1].artifact
    assert sorted(b.cached for b in builds) == [False, True]
    assert [p.name for p in env_dirs(home)] == [builds[0].env_key]
    installs = sum(builder.log(b.id).text.count("==> [2/2] pip install") for b in builds
                   if not b.cached)
    assert installs == 1


def test_second_build_of_a_key_in_progress_waits_for_the_first(
        builder: BuilderProcess, home: Path, gated_index: GatedIndex) -> None:
    first = builder.start(gated_index.requirements(), label="gate:1")
    builder.wait_until(first.id, gated_index.arrived.is_set, "the install reach the index")

    second = builder.start(gated_index.requirements(), label="gate:2")

    assert second.env_key == first.env_key
    assert second.state == "running" and second.cached  # mirrors the build it waits for
    assert builder.get(second.id).state == "running"
    gated_index.open()
    done = [builder.wait(first.id), builder.wait(second.id)]
    assert [b.state for b in done] == ["succeeded", "succeeded"], [b.error for b in done]
    assert done[1].artifact == done[0].artifact and not done[0].cached
    assert [p.name for p in env_dirs(home)] == [first.env_key]
    follower_log = builder.log(second.id).text
    assert f"build {first.id} is already building" in follower_log
    assert f"---- log of build {first.id} ----" in follower_log
    assert run_python(done[1].artifact, f"import {GATE_MODULE}; print('ok')") == "ok"


def test_restart_keeps_builds_and_the_env_cache(home: Path, uv_cache: Path) -> None:
    builder = BuilderProcess(home, uv_cache)
    try:
        old = builder.wait(builder.start("six\n", label="m:1").id)
        assert old.state == "succeeded", old.error
        old_log = builder.log(old.id).text
    finally:
        assert builder.terminate() == 0, builder.stderr()

    builder = BuilderProcess(home, uv_cache)
    try:
        again = builder.get(old.id)
        assert again == old
        assert builder.log(old.id).text == old_log
        new = builder.start("six", label="m:2")
        assert new.state == "succeeded" and new.cached and new.artifact == old.artifact
        assert len(env_dirs(home)) == 1
    finally:
        assert builder.terminate() == 0, builder.stderr()


def test_build_running_when_the_builder_dies_is_failed_after_restart(
        home: Path, uv_cache: Path, gated_index: GatedIndex) -> None:
    builder = BuilderProcess(home, uv_cache)
    try:
        build = builder.start(gated_index.requirements(), label="gate:1")
        builder.wait_until(build.id, gated_index.arrived.is_set, "the install reach the index")
        assert builder.get(build.id).state == "running"
    finally:
        builder.kill()
    assert any(".tmp-" in p.name for p in env_dirs(home))  # the crash left a half-built env

    builder = BuilderProcess(home, uv_cache)
    try:
        after = builder.get(build.id)
        assert after.state == "failed"
        assert after.error == "builder restarted during the build; retry"
        assert builder.log(build.id).state == "failed"
        assert env_dirs(home) == []  # the half-built env was removed, never reused
        gated_index.open()
        retry = builder.wait(builder.start(gated_index.requirements()).id)
        assert retry.state == "succeeded" and not retry.cached, retry.error
    finally:
        builder.kill()


def test_sigterm_during_a_build_exits_cleanly_and_records_it_failed(
        home: Path, uv_cache: Path, gated_index: GatedIndex) -> None:
    builder = BuilderProcess(home, uv_cache)
    build = builder.start(gated_index.requirements())
    builder.wait_until(build.id, gated_index.arrived.is_set, "the install reach the index")

    assert builder.terminate() == 0, builder.stderr()

    record = json.loads((HomeLayout(home).builder / "builds" / f"{build.id}.json").read_text())
    assert record["state"] == "failed"
    assert record["error"] == "builder stopped during the build; retry"
    assert env_dirs(home) == []


def test_missing_package_fails_with_the_log_tail_in_error(builder: BuilderProcess,
                                                         home: Path) -> None:
    build = builder.wait(builder.start("this-package-does-not-exist-xyz==1.0\n").id)

    assert build.state == "failed"
    reason, _, tail = build.error.partition("\n")
    assert reason == "pip install failed (exit 1)"
    assert "this-package-does-not-exist-xyz" in tail
    assert 0 < len(tail.splitlines()) <= 20
    assert build.artifact == ""
    assert env_dirs(home) == []
    assert builder.log(build.id).state == "failed"


def test_bad_requests_are_invalid_with_a_message(builder: BuilderProcess) -> None:
    with pytest.raises(grpc.RpcError) as unknown:
        builder.stub.StartBuild(builder_pb2.BuildRequest(target="podman"), timeout=30)
    assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown build target 'podman'" in unknown.value.details()
    assert error_of(unknown.value)["path"] == "target"

    with pytest.raises(grpc.RpcError) as docker:  # an image needs the package to copy
        builder.stub.StartBuild(builder_pb2.BuildRequest(target="docker"), timeout=30)
    assert docker.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(docker.value)["path"] == "package_dir"

    with pytest.raises(grpc.RpcError) as python:  # no Python 2 the worker can run on
        builder.start("", python="2.5")
    assert python.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_of(python.value)["code"] == "build.python_unavailable"

    with pytest.raises(grpc.RpcError) as strict:  # strict: no substitute for 3.99 either
        builder.start("", python="3.99", python_strict=True)
    assert strict.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "python_strict" in error_of(strict.value)["message"]

    with pytest.raises(grpc.RpcError) as missing:
        builder.get("0123456789abcdef")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_of(missing.value)["code"] == "build.not_found"
    with pytest.raises(grpc.RpcError) as missing_log:
        builder.log("nope")
    assert missing_log.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_is_serving_and_reflection_lists_the_builder(builder: BuilderProcess) -> None:
    health = health_pb2_grpc.HealthStub(builder.channel)
    for service in ("", SERVICE):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    services = ProtoReflectionDescriptorDatabase(builder.channel).get_services()
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services
