"""The plan is a pure function: create, update per field, prune only what this source manages."""

from __future__ import annotations

from services.watcher import diff as d

SRC = "/repo#main:config"


def spec(replicas: int = 1, package: str = "sha256:aa", **ann: str) -> dict:
    return d.comparable(model="svc", package=package, version=0, runtime="process",
                        replicas=replicas, env={"A": "1"}, cpu=0, memory="", gpu=0,
                        timeout_s=0, annotations=ann)


def managed(**extra: str) -> dict[str, str]:
    return {d.MANAGED_BY: d.GITOPS, d.SOURCE: SRC, d.SOURCE_PATH: "config/x.yaml", **extra}


def live(name: str, s: dict, annotations: dict[str, str]) -> d.LiveService:
    return d.LiveService(name, s, annotations)


def test_create_update_keep_prune() -> None:
    ann = managed()
    targets = {"new": d.Target("new", spec(**ann), "config/new.yaml", 1),
               "same": d.Target("same", spec(**ann), "config/same.yaml", 1),
               "more": d.Target("more", spec(replicas=3, **ann), "config/more.yaml", 1)}
    current = {"same": live("same", spec(**ann), ann),
               "more": live("more", spec(replicas=1, **ann), ann),
               "gone": live("gone", spec(**ann), ann)}
    changes = {c.name: c for c in d.plan(targets, current, SRC, True, {})}
    assert changes["new"].action == "create"
    assert changes["same"].action == "keep" and not changes["same"].fields
    assert changes["more"].action == "update"
    assert [str(f) for f in changes["more"].fields] == ["replicas: 1 -> 3"]
    assert changes["gone"].action == "prune" and changes["gone"].file == "config/x.yaml"


def test_commit_annotation_alone_is_no_change() -> None:
    a, b = managed(**{d.SOURCE_COMMIT: "aaa"}), managed(**{d.SOURCE_COMMIT: "bbb"})
    changes = d.plan({"s": d.Target("s", spec(**b), "f", 1)}, {"s": live("s", spec(**a), a)},
                     SRC, True, {})
    assert changes[0].action == "keep"


def test_unmanaged_and_foreign_services_are_never_touched() -> None:
    cli_made = live("cli", spec(), {})
    foreign = live("other", spec(), {d.MANAGED_BY: d.GITOPS, d.SOURCE: "/elsewhere#main:."})
    assert d.plan({}, {"cli": cli_made, "other": foreign}, SRC, True, {}) == []
    targets = {"cli": d.Target("cli", spec(), "f", 1)}
    assert d.conflicts(targets, {"cli": cli_made}, SRC) == ["cli"]


def test_prune_off_reports_orphans() -> None:
    ann = managed()
    [c] = d.plan({}, {"gone": live("gone", spec(**ann), ann)}, SRC, False, {})
    assert c.action == "orphan"


def test_drift_is_a_difference_whose_declaration_did_not_change() -> None:
    ann = managed()
    t = d.Target("s", spec(replicas=1, **ann), "f", 1)
    cur = {"s": live("s", spec(replicas=4, **ann), ann)}
    [c] = d.plan({"s": t}, cur, SRC, True, {"s": t.hash})
    assert c.action == "update" and c.drift
    [c] = d.plan({"s": t}, cur, SRC, True, {"s": "an older declaration"})
    assert c.action == "update" and not c.drift


def test_field_level_differences_for_env_and_package() -> None:
    a = spec(package="sha256:" + "1" * 64)
    b = dict(spec(package="sha256:" + "2" * 64), env={"A": "1", "B": "2"})
    fields = [str(f) for f in d.field_changes(a, b)]
    assert fields == ["env.B: (none) -> 2", "package: sha256:111111111111 -> sha256:222222222222"]
