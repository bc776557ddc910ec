"""A GitOps source's record as the registry keeps it: which fields the registry owns, how
each kind of report moves them, and the two conditions shown for it.

A watcher describes its source (repository, branch, head, notes, ...), but what is in
force is the registry's to say: `synced_commit` moves only when GitOps.ApplyCommit
commits (gitops_apply.py), the intent (`applying`, `applying_since`, `apply_attempts`)
only with an intent report, and the webhook counter and history only here.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.json_format import ParseDict

from modelport.v1 import gitops_pb2

HISTORY = 20
#: kept from the stored record whatever a watcher sends
OWNED = ("sync_requests", "history", "synced_commit", "last_sync", "applying",
         "applying_since", "apply_attempts")


def _merge(new: dict[str, Any], old: dict[str, Any], now: float) -> dict[str, Any]:
    """The watcher's fields from ``new``, the registry's from ``old``."""
    return {**{k: v for k, v in new.items() if k not in OWNED},
            **{k: old[k] for k in OWNED if k in old}, "heartbeat": now}


def _history(old: dict[str, Any], sync: dict[str, Any] | None, now: float
             ) -> list[dict[str, Any]]:
    history = list(old.get("history", []))
    if sync:
        history = (history + [{"ts": now, **sync}])[-HISTORY:]
    return history


def reported(new: dict[str, Any], old: dict[str, Any], sync: dict[str, Any] | None,
             now: float) -> dict[str, Any]:
    """A plain report (a commit that cannot be applied, or was refused): the watcher's view
    of the source; the commit in force stays, and no apply is in progress any more."""
    rec = {**_merge(new, old, now), "history": _history(old, sync, now)}
    rec.update(applying="", applying_since=0.0, apply_attempts=0)
    return rec


def applying(new: dict[str, Any], old: dict[str, Any], commit: str, now: float
             ) -> dict[str, Any]:
    """An intent report: the watcher is about to apply ``commit``. A second intent for the
    same commit is a resumed attempt (the first one was interrupted)."""
    rec = _merge(new, old, now)
    again = old.get("applying") == commit
    rec["applying"] = commit
    rec["applying_since"] = old.get("applying_since", now) if again else now
    rec["apply_attempts"] = int(old.get("apply_attempts", 0)) + 1 if again else 1
    return rec


def in_force(new: dict[str, Any], old: dict[str, Any], commit: str,
             sync: dict[str, Any] | None, now: float) -> dict[str, Any]:
    """ApplyCommit committed: ``commit`` is in force and the intent is cleared."""
    rec = {**_merge(new, old, now), "history": _history(old, sync, now)}
    rec.update(synced_commit=commit, last_sync=now, message="", applying="",
               applying_since=0.0, apply_attempts=0)
    return rec


def conditions(src: dict[str, Any]) -> list[dict[str, Any]]:
    """Synced and Progressing, as Argo CD shows an application: Synced's message always
    names the commit in force."""
    synced, head = src.get("synced_commit", ""), src.get("head", "")
    going, attempts = src.get("applying", ""), int(src.get("apply_attempts", 0))
    force = (f"commit {synced[:12]} is in force" if synced else "no commit is in force yet")
    if going:
        sync = (False, "Applying", f"applying commit {going[:12]}; {force}")
    elif src.get("message"):
        sync = (False, "NotApplied", f"{src['message']}; {force}")
    elif head and not synced.startswith(head):
        sync = (False, "OutOfSync", f"head {head[:12]} is not applied yet; {force}")
    else:
        sync = (True, "Synced", force)
    if going and attempts >= 2:
        progress = (True, "Resuming", f"resuming commit {going[:12]} (attempt {attempts}): "
                    "an earlier attempt was interrupted before it wrote anything")
    elif going:
        progress = (True, "Applying", f"applying commit {going[:12]}")
    else:
        progress = (False, "Idle", "no sync in progress")
    since = float(src.get("applying_since", 0.0))
    return [{"type": "Synced", "status": sync[0], "reason": sync[1], "message": sync[2],
             "last_transition": since if going else float(src.get("last_sync", 0.0))},
            {"type": "Progressing", "status": progress[0], "reason": progress[1],
             "message": progress[2], "last_transition": since}]


def to_proto(src: dict[str, Any]) -> gitops_pb2.GitOpsSource:
    return ParseDict({**src, "conditions": conditions(src)}, gitops_pb2.GitOpsSource(),
                     ignore_unknown_fields=True)
