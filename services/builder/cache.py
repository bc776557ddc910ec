"""Builds and the environments they produce, kept across builder restarts.

- A finished environment is found on disk by its key (and its marker), so it is reused
  across model versions and across restarts: such a build succeeds at once, `cached`.
- One key is built once at a time: a second build of a key that is being built follows
  the first (its state mirrors the leader's, then it takes the leader's result, `cached`).
- Each build's record is JSON in `builder/builds/<id>.json` and its log is
  `builder/logs/<id>.log`; a build that was unfinished when the builder stopped is
  reported failed on the next start, so its caller retries.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.trace import Status, StatusCode

from modelport.home import HomeLayout
from services.builder import errors
from services.builder.buildlog import BuildLog, StepFailed
from services.builder.image import ImageBuilder
from services.builder.venv import EnvSpec, VenvBuilder
from services.telemetry import tracing

log = logging.getLogger(__name__)
_tracer = tracing.tracer("modelport.builder")

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
TERMINAL = (SUCCEEDED, FAILED)
RESTARTED = "builder restarted during the build; retry"
STOPPED = "builder stopped during the build; retry"
#: lines of the log that a failed build's `error` carries
ERROR_TAIL_LINES = 20


@dataclass
class BuildRecord:
    id: str
    state: str = QUEUED
    env_key: str = ""
    artifact: str = ""  # the environment's python executable
    error: str = ""  # one-line reason, then the log's tail
    cached: bool = False
    started_at: float = 0.0
    finished_at: float = 0.0
    label: str = ""
    python: str = ""  # the interpreter's version
    follows: str = ""  # the build whose environment this one waits for, if any
    target: str = "process"  # process (a virtualenv) | docker (an image: image.py)
    warning: str = ""  # what the caller should know though it succeeds (interpreters.py)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class _Leader:
    record: BuildRecord
    result: asyncio.Future[BuildRecord]


class BuildCache:
    def __init__(self, layout: HomeLayout, venvs: VenvBuilder, max_concurrent: int = 2,
                 images: ImageBuilder | None = None) -> None:
        self._records_dir = layout.builder / "builds"
        self._logs_dir = layout.builder / "logs"
        self._venvs = venvs
        self._images = images
        self._records: dict[str, BuildRecord] = {}
        self._leaders: dict[str, _Leader] = {}  # env key -> the build that builds it
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_concurrent)

    def load(self) -> None:
        """Read the records of earlier builds; fail those a stopped builder left unfinished."""
        self._records_dir.mkdir(parents=True, exist_ok=True)
        self._logs_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self._records_dir.glob("*.json")):
            try:
                record = BuildRecord.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError) as exc:
                log.warning("skipping unreadable build record %s: %s", path, exc)
                continue
            if not record.done:
                record.state, record.error, record.finished_at = FAILED, RESTARTED, time.time()
                blog = self._open_log(record.id)
                blog.line(f"==> build failed: {RESTARTED}")
                blog.close()
                self._save(record)
            self._records[record.id] = record
        for path in [*self._venvs.remove_stale(),
                     *(self._images.remove_stale() if self._images else [])]:
            log.info("removed half-built environment %s", path)
        log.info("loaded %d build records", len(self._records))

    async def start(self, *, python: str, requirements: str, label: str = "",
                    target: str = "process", base_image: str = "", package_dir: str = "",
                    package_digest: str = "", python_strict: bool = False, image: str = "",
                    dockerfile: str = "") -> BuildRecord:
        """Begin a build and return at once: queued/running, or succeeded when cached.

        ``target`` "docker" builds an image (``image.py``) from ``base_image``, the
        requirements and the package, or, for a custom image package, takes ``image`` from
        the Docker host or builds the package's ``dockerfile``; a docker build that cannot
        even be planned (no engine) is recorded failed with the reason, like any failed
        build.
        """
        builder: Any = self._venvs
        record = BuildRecord(id=uuid.uuid4().hex[:16], label=label, started_at=time.time(),
                             target=target)
        if target == "docker":
            if self._images is None:
                raise errors.target_unavailable(target)
            builder = self._images
            try:
                spec: Any = await builder.plan(base_image=base_image, requirements=requirements,
                                               package_dir=package_dir,
                                               package_digest=package_digest, label=label,
                                               image=image, dockerfile=dockerfile)
            except StepFailed as exc:
                return self._failed_at_once(record, exc.reason)
            what = f"image {spec.tag} from {spec.source}"
        else:
            spec = await builder.plan(python, requirements, python_strict)
            record.python, record.warning = spec.python.version, spec.warning
            what = f"environment {spec.key} for python {spec.python.version}"
        record.env_key = spec.key
        blog = self._open_log(record.id)
        blog.header(f"build {record.id}" + (f" of {label}" if label else "") + f": {what}")
        if record.warning:
            blog.line(f"warning: {record.warning}")
        self._records[record.id] = record
        # no await from here on: checking and claiming the key is one step
        if (marker := builder.existing(spec.key)) is not None:
            record.state, record.cached = SUCCEEDED, True
            record.artifact = str(builder.artifact_of(spec.key))
            record.finished_at = time.time()
            by = f" (by build {marker['build_id']})" if marker.get("build_id") else ""
            kind = "image" if target == "docker" else "environment"
            blog.line(f"{kind} {spec.key} is already built{by}; reusing it: {record.artifact}")
            blog.close()
            self._save(record)
        elif (leader := self._leaders.get(spec.key)) is not None:
            record.state, record.cached = leader.record.state, True
            record.follows = leader.record.id
            blog.line(f"build {leader.record.id} is already building environment {spec.key}; "
                      "waiting for it (its log follows below)")
            self._save(record)
            self._spawn(self._follow(record, blog, leader))
        else:
            leader = _Leader(record, asyncio.get_running_loop().create_future())
            self._leaders[spec.key] = leader
            self._save(record)
            self._spawn(self._lead(leader, spec, blog, builder))
        return self._view(record)

    def _failed_at_once(self, record: BuildRecord, reason: str) -> BuildRecord:
        blog = self._open_log(record.id)
        blog.header(f"build {record.id}" + (f" of {record.label}" if record.label else "")
                    + f" ({record.target})")
        self._records[record.id] = record
        self._fail(record, blog, reason)
        record.finished_at = time.time()
        blog.close()
        self._save(record)
        return self._view(record)

    def get(self, build_id: str) -> BuildRecord:
        record = self._records.get(build_id)
        if record is None:
            raise errors.build_not_found(build_id)
        return self._view(record)

    def log_text(self, build_id: str) -> tuple[str, str]:
        """The build's whole log so far, and its state; a follower's includes its leader's."""
        record = self.get(build_id)
        text = self._read_log(build_id)
        if record.follows:
            text += f"---- log of build {record.follows} ----\n" + self._read_log(record.follows)
        return text, record.state

    async def close(self) -> None:
        """Stop every build in progress; each is recorded failed ("builder stopped")."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- build tasks ----------------------------------------------------------------------

    async def _lead(self, leader: _Leader, spec: EnvSpec, blog: BuildLog,
                    builder: Any = None) -> None:
        """The build as a trace of its own, linked to the StartBuild call that asked for it."""
        record = leader.record
        with tracing.span(_tracer, "build", {
                "modelport.build_id": record.id, "modelport.env_key": spec.key,
                "modelport.label": record.label, "modelport.python": record.python},
                context=otel_context.Context(), links=tracing.link_to_current()) as span:
            await self._build(leader, spec, blog, builder or self._venvs)
            if span is not None and record.state == FAILED:
                span.set_status(Status(StatusCode.ERROR, record.error.split("\n", 1)[0]))

    async def _build(self, leader: _Leader, spec: EnvSpec, blog: BuildLog,
                     builder: Any) -> None:
        record = leader.record
        try:
            async with self._slots:
                record.state = RUNNING
                self._save(record)
                artifact = await builder.build(spec, record.id, blog)
            record.state, record.artifact = SUCCEEDED, str(artifact)
            blog.line(f"==> build succeeded: {artifact}")
        except StepFailed as exc:
            self._fail(record, blog, exc.reason, with_tail=True)
        except asyncio.CancelledError:
            self._fail(record, blog, STOPPED)
            raise
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception("build %s failed inside the builder (ref %s)", record.id, ref)
            self._fail(record, blog, f"internal error in the builder (ref {ref}); "
                                     "see the builder's log", with_tail=True)
        finally:
            record.finished_at = time.time()
            self._save(record)
            blog.close()
            if self._leaders.get(spec.key) is leader:
                del self._leaders[spec.key]
            if not leader.result.done():
                leader.result.set_result(dataclasses.replace(record))

    async def _follow(self, record: BuildRecord, blog: BuildLog, leader: _Leader) -> None:
        try:
            # shielded: cancelling this follower must not cancel the leader's result
            result = await asyncio.shield(leader.result)
            if result.state == SUCCEEDED:
                record.state, record.artifact = SUCCEEDED, result.artifact
                blog.line(f"==> build {result.id} succeeded; reusing its environment: "
                          f"{result.artifact}")
            else:
                record.state, record.error = FAILED, result.error
                blog.line(f"==> build {result.id} failed: {result.error.splitlines()[0]}")
        except asyncio.CancelledError:
            self._fail(record, blog, STOPPED)
            raise
        finally:
            record.finished_at = time.time()
            self._save(record)
            blog.close()

    def _fail(self, record: BuildRecord, blog: BuildLog, reason: str,
              with_tail: bool = False) -> None:
        record.state = FAILED
        record.error = f"{reason}\n{blog.tail(ERROR_TAIL_LINES)}" if with_tail else reason
        blog.line(f"==> build failed: {reason}")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- records and logs -----------------------------------------------------------------

    def _view(self, record: BuildRecord) -> BuildRecord:
        """A copy for callers; an unfinished follower shows its leader's progress."""
        view = dataclasses.replace(record)
        leader = self._records.get(record.follows) if record.follows else None
        if not view.done and leader is not None and not leader.done:
            view.state = leader.state
        return view

    def _save(self, record: BuildRecord) -> None:
        path = self._records_dir / f"{record.id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(record), indent=2))
        os.replace(tmp, path)

    def _open_log(self, build_id: str) -> BuildLog:
        return BuildLog(self._log_path(build_id))

    def _log_path(self, build_id: str) -> Path:
        return self._logs_dir / f"{build_id}.log"

    def _read_log(self, build_id: str) -> str:
        try:
            return self._log_path(build_id).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
