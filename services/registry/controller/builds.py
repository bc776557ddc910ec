"""Versions to build: every wanted version needs its environment before replicas start."""

from __future__ import annotations

from services.registry.controller import conditions as c
from services.registry.controller.actions import StartBuild
from services.registry.controller.pass_state import PassState
from services.registry.controller.traffic import describe
from services.registry.store.base import VersionRecord


def build_state(desired: dict[int, float], versions: dict[int, VersionRecord]
                ) -> tuple[list[int], dict[int, str], list[int]]:
    """The wanted versions that are missing, failed to build (with the error), building."""
    missing = [v for v in desired if v not in versions]
    failed = {v: versions[v].error for v in desired
              if v in versions and versions[v].state == "failed"}
    building = [v for v in desired
                if v in versions and versions[v].state in ("pending", "building")]
    return missing, failed, building


def first_line(text: str) -> str:
    """A build error's first line: events and messages stay one line (the log has it all)."""
    return text.splitlines()[0] if text and text.splitlines() else "unknown error"


def assess_builds(p: PassState) -> None:
    """Where the wanted versions' builds stand (again after a rollback changed them)."""
    p.missing, p.build_failed, p.building = build_state(p.desired, p.versions)
    p.built = not p.missing and not p.build_failed and not p.building


def start_builds(p: PassState) -> None:
    """Start the build of each wanted version still pending (not for a stopped service)."""
    assess_builds(p)
    if not p.stopped:
        p.actions += [StartBuild(v) for v in p.building if p.versions[v].state == "pending"]


def built_condition(p: PassState) -> None:
    """``Built``: false while building or after a failed build, true once all are built."""
    if p.building:
        p.conditions.append(c.condition(c.BUILT, False, "Building",
                                        f"building the environment for {describe(p.desired)}",
                                        p.prev_conditions))
    elif p.build_failed:
        v, err = next(iter(p.build_failed.items()))
        p.conditions.append(c.condition(c.BUILT, False, "BuildFailed",
                                        f"version {v} failed to build: {first_line(err)}",
                                        p.prev_conditions))
    elif p.built:
        p.conditions.append(c.condition(c.BUILT, True, "Built", f"{describe(p.desired)} built",
                                        p.prev_conditions))
