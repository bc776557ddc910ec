"""Cold start: from `create` to the first answer, for the process and the Docker runtime.

Run as ``.venv/bin/python bench/coldstart.py [--rounds N] [--runtimes process,docker]``.
One `modelport up` on a fresh temporary home; for each runtime and round it deploys the
iris predictor (``examples/predictor-iris``, requirement: numpy) three ways and times
``Client.create(..., wait=False)`` (upload included) until ``POST /infer`` first answers
200:

- ``fresh env``: requirements never seen (a unique ``numpy!=0.0.<n>`` pin) and new
  content. Process: a new virtualenv (uv, from its package cache); docker: requirements
  installed for the image's Python, and a new image.
- ``cached env``: new content, the requirements of the row before. Process: the
  virtualenv is reused; docker: the installed requirements are reused, a new image is
  built (one COPY layer).
- ``same content``: a second service of the first package. Process: as cached env;
  docker: the image is reused by its content tag, only a container starts.

Each row also splits the time with the service's events: create -> build done
(`BuildSucceeded`), build done -> replica ready (`TrafficSwitched`), ready -> first answer
(client polling every 50 ms). Docker needs a running engine and a local base image
(``.ci/docker-setup``; ``--base-image``); images this run built are removed at the end.
Everything stays on 127.0.0.1; loops are bounded by time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from harness.iris import EXAMPLE, EXPECTED_LABEL, FEATURES
from harness.platform import Platform
from harness.processes import raise_on_sigterm
from harness.report import context, load

FIRST_ANSWER_TIMEOUT_S = 600.0
ROWS = ("fresh env", "cached env", "same content")


def package(workdir: Path, requirements: str) -> Path:
    """The iris example with content of its own and the given requirements."""
    dst = workdir / f"iris-{uuid.uuid4().hex[:8]}"
    shutil.copytree(EXAMPLE, dst, ignore=shutil.ignore_patterns("__pycache__"))
    (dst / "requirements.txt").write_text(requirements)
    (dst / "token.txt").write_text(uuid.uuid4().hex)
    return dst


def time_create(client, url: str, pkg: Path, name: str, runtime: str) -> dict[str, float]:
    spec = json.dumps({"runtime": runtime})
    t0 = time.time()
    svc = client.create(pkg, name=name, spec=spec, wait=False)
    deadline = time.monotonic() + FIRST_ANSWER_TIMEOUT_S
    with httpx.Client(timeout=60) as http:
        while True:
            try:
                r = http.post(svc["url"], json={"features": FEATURES})
                if r.status_code == 200 and r.json()["data"]["label"] == EXPECTED_LABEL:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: no answer within {FIRST_ANSWER_TIMEOUT_S:g}s: "
                                   f"{client.get(name)['message']}")
            time.sleep(0.05)
    t_answer = time.time()
    events = {e["reason"]: e["ts"] for e in reversed(client.events(name))}  # first of each
    built = events.get("BuildSucceeded", t0)
    ready = events.get("TrafficSwitched", built)
    return {"total": t_answer - t0, "build": built - t0, "start": ready - built,
            "answer": t_answer - ready}


def image_tags(client, name: str) -> set[str]:
    try:
        return set(re.findall(r"modelport/model:[0-9a-f]{32}", client.build_log(name, 1)))
    except Exception:
        return set()


def docker_ready(base_image: str) -> str:
    """'' when the engine answers and has the base image, else why not."""
    try:
        import docker

        engine = docker.from_env(timeout=30)
        engine.ping()
        engine.images.get(base_image)
    except Exception as exc:
        return str(exc)
    return ""


def run_runtime(client, url: str, workdir: Path, runtime: str, rounds: int,
                made: set[str]) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {row: [] for row in ROWS}
    for n in range(rounds):
        requirements = f"numpy!=0.0.{uuid.uuid4().int % 10**9}\n"
        first = package(workdir, requirements)
        plan = [("fresh env", first), ("cached env", package(workdir, requirements)),
                ("same content", first)]
        for i, (row, pkg) in enumerate(plan):
            name = f"cold-{runtime[:4]}-{n}-{i}"
            timing = time_create(client, url, pkg, name, runtime)
            results[row].append(timing)
            made |= image_tags(client, name)
            print(f"  {runtime:8} {row:13} round {n + 1}: {timing['total']:7.2f} s "
                  f"(build {timing['build']:.2f}, start {timing['start']:.2f}, "
                  f"answer {timing['answer']:.2f})", flush=True)
        for i in range(len(plan)):
            client.delete(f"cold-{runtime[:4]}-{n}-{i}")
    return results


def report(all_results: dict[str, dict[str, list[dict[str, float]]]]) -> str:
    lines = ["runtime  row            rounds  total s  build s  start s  answer s",
             "-" * 66]
    for runtime, rows in all_results.items():
        for row, timings in rows.items():
            if not timings:
                continue

            def med(key: str, timings: list[dict[str, float]] = timings) -> float:
                return statistics.median(t[key] for t in timings)

            lines.append(f"{runtime:8} {row:13} {len(timings):7d} {med('total'):8.2f} "
                         f"{med('build'):8.2f} {med('start'):8.2f} {med('answer'):9.2f}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=int, default=2, help="rounds per runtime (medians)")
    p.add_argument("--runtimes", default="process,docker", help="comma-separated")
    p.add_argument("--base-image", default=os.environ.get(
        "MODELPORT_BUILDER_DOCKER_BASE_IMAGE", "modelport/base:bookworm"),
        help="base image for the docker rows (the example names none)")
    p.add_argument("--keep-home", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_on_sigterm()
    runtimes = [r for r in args.runtimes.split(",") if r]
    if "docker" in runtimes and (why := docker_ready(args.base_image)):
        print(f"bench: skipping docker: {why} (.ci/docker-setup provides an engine and "
              f"{args.base_image})", file=sys.stderr)
        runtimes.remove("docker")
    os.environ["MODELPORT_BUILDER_DOCKER_BASE_IMAGE"] = args.base_image
    print(context(__file__, argv), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="modelport-coldstart-"))
    plat = Platform(workdir)
    made: set[str] = set()
    ok = False
    try:
        url = plat.start()
        results = {}
        with plat.client() as client:
            for runtime in runtimes:
                results[runtime] = run_runtime(client, url, workdir, runtime, args.rounds,
                                               made)
        print()
        print(report(results))
        print(f"load after the run: {load()}")
        ok = True
    except Exception as exc:
        print(f"bench: failed: {exc}\n{plat.diagnostics()}", file=sys.stderr)
    finally:
        plat.stop()
        if made:
            try:
                import docker

                engine = docker.from_env(timeout=120)
                for tag in made:
                    try:
                        engine.images.remove(tag, force=True)
                    except Exception as exc:  # in use or gone: leave it, say so
                        print(f"bench: could not remove {tag}: {exc}", file=sys.stderr)
            except Exception:
                pass
        if ok and not args.keep_home:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"bench: home kept at {workdir}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
