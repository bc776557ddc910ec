"""The pure parts of custom images (issue 17 §2), without an engine: which FROM images a
Dockerfile needs, what the container is made of, the probes, and which headers cross."""

from __future__ import annotations

from pathlib import Path

from services.builder.image import from_images, missing_image_message
from services.gateway.rest.forward import DROPPED, target_of
from services.runtime.backends import ReplicaSpec
from services.runtime.backends.image import image_options, run_as
from services.runtime.http_link import Check, request_headers, response_headers
from services.runtime.probes import Probes
from services.runtime.supervisor import image_probes


def spec(**config: object) -> ReplicaSpec:
    return ReplicaSpec(replica_id="echo-v1-abc", service="echo", version=1, kind="image",
                       python="", package_dir=Path("/nowhere"), config=dict(config),
                       env={"MODE": "fast"}, timeout_s=60, runtime="docker",
                       image="modelport/image:k", resources={"cpu": 0.5, "memory": "256Mi"},
                       gpus=["1"])


def test_from_images_skips_stages_scratch_and_args() -> None:
    text = ("# syntax\nFROM --platform=linux/amd64 modelport/base:bookworm AS build\n"
            "RUN make \\\n  all\nFROM build\nARG B=x\nFROM $B\nFROM scratch\n"
            "from python:3.11-slim\nFROM modelport/base:bookworm\n")
    assert from_images(text) == ["modelport/base:bookworm", "python:3.11-slim"]


def test_a_missing_image_says_how_to_provide_it() -> None:
    text = missing_image_message("team/echo:1", "pulling is off")
    assert "docker load -i" in text and "docker tag SOURCE team/echo:1" in text


def test_the_container_has_no_network_no_mounts_and_the_limits() -> None:
    opts = image_options(spec(), runtime="rt", user="65534:65534")
    assert opts["network_mode"] == "none" and "mounts" not in opts and "command" not in opts
    assert opts["cap_drop"] == ["ALL"] and opts["read_only"] is True
    assert opts["security_opt"] == ["no-new-privileges"]
    assert opts["nano_cpus"] == 500_000_000 and opts["mem_limit"] == 256 * 2**20
    assert opts["device_requests"][0]["DeviceIDs"] == ["1"]
    assert opts["environment"]["MODE"] == "fast"
    assert opts["environment"]["MODELPORT_REPLICA_ID"] == "echo-v1-abc"
    assert opts["labels"]["modelport.service"] == "echo"


def test_never_root() -> None:
    assert run_as("", "65534:65534") == "65534:65534"
    assert run_as("root", "100001:100001") == "100001:100001"
    assert run_as("0:0", "65534:65534") == "65534:65534"
    assert run_as("ma-user", "65534:65534") == "ma-user"
    assert run_as("1000:1000", "65534:65534") == "1000:1000"


def test_checks_follow_modelarts_health() -> None:
    assert Check.of({}).method == "TCP" and Check.of({}).port == 8080
    http = Check.of({"port": 9000, "health": {"check_method": "HTTP"}})
    assert (http.method, http.url, http.port) == ("HTTP", "/health", 9000)
    assert http.describe() == "GET /health on port 9000"
    exec_ = Check.of({"health": {"check_method": "exec", "command": "test -e /tmp/ok"}})
    assert (exec_.method, exec_.command) == ("EXEC", "test -e /tmp/ok")


def test_ready_when_the_check_first_passes_within_the_start_budget() -> None:
    health = {"period_seconds": 2, "failure_threshold": 3, "initial_delay_seconds": 4}
    probes = image_probes(Probes.defaults().with_health(health), health, 120.0)
    assert probes.startup.initial_delay_s == 4 and probes.startup.period_s == 2
    assert probes.startup.budget_s >= 120  # not 4 + 2 x 3
    assert probes.liveness.failure_threshold == 3  # once running
    own = {"startup": {"period_seconds": 1, "failure_threshold": 5}}
    assert image_probes(Probes.defaults().with_health(own), own, 120.0).startup.budget_s == 5


def test_headers_that_cross_and_those_that_do_not() -> None:
    sent = request_headers([("Host", b"gw:80"), ("Connection", b"keep-alive"),
                            ("Content-Type", b"application/json"),
                            ("Transfer-Encoding", b"chunked")], "gw:80", b"{}", "POST")
    assert sent == [(b"host", b"gw:80"), (b"content-type", b"application/json"),
                    (b"content-length", b"2")]
    assert request_headers([], "h", b"", "GET") == [(b"host", b"h")]
    got = response_headers([(b"Content-Type", b"text/plain"), (b"Content-Length", b"3"),
                            (b"Connection", b"close"), (b"Date", b"x"), (b"Server", b"y"),
                            (b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2")])
    assert got == [("content-type", b"text/plain"), ("content-length", b"3"),
                   ("set-cookie", b"a=1"), ("set-cookie", b"b=2")]
    assert {"authorization", "apikey", "x-apig-appcode"} <= DROPPED


def test_the_path_after_the_service_is_the_containers() -> None:
    assert target_of("/v1/services/echo/infer", b"") == "/infer"
    assert target_of("/v1/services/echo/v2/models/m%2Fx/predict", b"a=1&b=2") == (
        "/v2/models/m%2Fx/predict?a=1&b=2")
    assert target_of("/v1/infers/echo", b"") == "/"
    assert target_of("/v1/infers/echo/predictions/poetry", b"") == "/predictions/poetry"
