"""GitOps commands: `modelport watch`, `modelport diff`, `modelport status`.

`watch` runs the watcher in the foreground; `diff` plans without changing anything
(the same plan the next sync carries out); `status` shows what the registry knows, after
the platform's own components (cli/components_view.py: what crashed and when).
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modelport.cli import components_view
from modelport.cli.output import JsonOpt, UrlOpt, answered, fail, out
from modelport.client import Client
from modelport.errors import ModelportError

PathArg = Annotated[Path | None, typer.Argument(
    help="directory with service YAML, inside a git work tree")]
RepoOpt = Annotated[str, typer.Option("--repo", help="remote repository URL (clone and poll)")]
BranchOpt = Annotated[str, typer.Option(
    "--branch", help="branch to follow (default: the checked-out one; main for --repo)")]
SubpathOpt = Annotated[str, typer.Option("--path", help="directory inside --repo")]
WorktreeOpt = Annotated[bool, typer.Option(
    "--worktree", help="apply the working tree on save, uncommitted edits included")]


def watch(
    path: PathArg = None, repo: RepoOpt = "", branch: BranchOpt = "", subpath: SubpathOpt = "",
    interval: Annotated[str, typer.Option(help="polling fallback and drift check: 30s, 2m")]
    = "30s",
    worktree: WorktreeOpt = False,
    prune: Annotated[bool, typer.Option(
        "--prune/--no-prune", help="delete managed services whose YAML was removed "
        "(default: on, or the repository's GitOpsConfig)")] = True,
    once: Annotated[bool, typer.Option("--once", help="sync one time and exit")] = False,
    cache: Annotated[str, typer.Option(help="where --repo clones go")] = "",
    url: UrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """Apply the committed service YAML of a git branch, and keep applying it."""
    from services.watcher.main import make_source, parse_interval, run

    try:
        source = make_source(str(path) if path else None, repo, branch, subpath, worktree, cache)
        seconds = parse_interval(interval)
    except (ModelportError, RuntimeError) as exc:
        fail(exc, as_json)
    # --prune is the default; only an explicit --no-prune overrides the repository's choice
    code = run(source, url or "", seconds, None if prune else False, once, as_json)
    raise typer.Exit(code)


def diff(
    path: PathArg = None, repo: RepoOpt = "", branch: BranchOpt = "", subpath: SubpathOpt = "",
    worktree: WorktreeOpt = False,
    prune: Annotated[bool, typer.Option("--prune/--no-prune")] = True,
    cache: Annotated[str, typer.Option(help="where --repo clones go")] = "",
    url: UrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """Print what the next sync would change (created/updated/pruned, per field); changes
    nothing."""
    from services.watcher.main import make_source
    from services.watcher.platform import Platform
    from services.watcher.sync import Syncer

    try:
        source = make_source(str(path) if path else None, repo, branch, subpath, worktree, cache)
    except (ModelportError, RuntimeError, OSError) as exc:
        fail(exc, as_json)
    platform = Platform(url or "")
    try:
        p = answered(Syncer(source, platform, None if prune else False).prepare, as_json,
                     platform.client)
    except RuntimeError as exc:  # git failed under the source
        fail(exc, as_json)
    finally:
        platform.close()
    changes = [c for c in p.changes if c.action != "keep"]
    if as_json:
        print(json.dumps({"commit": p.snapshot.commit, "applies": not p.failures,
                          "changes": [c.to_dict() for c in changes],
                          "failures": [f.__dict__ for f in p.failures],
                          "uncommitted": p.snapshot.uncommitted, "notes": p.rendered.notes},
                         indent=2))
        return
    print(f"commit {p.snapshot.commit[:12]} of {source.id}")
    marks = {"create": "+", "update": "~", "prune": "-", "orphan": "!"}
    for c in changes:
        extra = " (drift: changed outside git)" if c.drift else ""
        if c.action == "orphan":
            extra = " (not declared any more; prune is off, left alone)"
        where = f"{c.file}:{c.line}" if c.line else c.file
        print(f"{marks[c.action]} {c.action} {c.name}  {where}{extra}")
        for f in c.fields:
            if c.action == "create" and f.field.startswith("annotations."):
                continue
            print(f"    {f}")
    for f in p.failures:
        print(f"x invalid {f.service or '(unnamed)'}  {f.where()}: {f.message}")
    if p.failures:
        print(f"the commit would not be applied: {len(p.failures)} problem(s)")
    elif not changes:
        print("no changes")
    if p.snapshot.uncommitted and not p.snapshot.worktree:
        print("uncommitted changes (not part of this diff; use --worktree to include them): "
              + ", ".join(p.snapshot.uncommitted))


def _when(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts).strftime("%H:%M:%S") if ts else "-"


def status(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """The platform's components (state, pid, restarts, last crash), then per GitOps
    repository the commit in force, one being applied and its Synced/Progressing conditions,
    and per managed service: sync status, commit, health, last error, last sync."""
    with Client(url) as c:
        platform, source = components_view.fetch(c)
        if platform is not None and not as_json:
            # first, and even when what follows fails (a registry away, a gateway down)
            components_view.render(platform, source)
        data: dict[str, Any] = answered(lambda: c._json("GET", "/api/v1/gitops"), as_json, c)
    if as_json:
        print(json.dumps({"platform": platform, **data}, indent=2))
        return
    if not data["sources"] and not data["services"]:
        print("gitops: no repository synced (`modelport watch DIR` or `modelport up --config "
              "DIR` follows one)")
        return
    for s in data["sources"]:
        print(f"source {s['id']}  ({s['mode']})")
        print(f"  head {s['head'][:12]}  synced {s['synced_commit'][:12] or '-'}  last sync "
              f"{_when(s['last_sync'])}  prune {'on' if s['prune'] else 'off'}")
        if s.get("applying"):
            attempts = s.get("apply_attempts", 1)
            print(f"  applying {s['applying'][:12]} (attempt {attempts}, since "
                  f"{_when(s.get('applying_since', 0.0))})")
        for cond in s.get("conditions", []):
            print(f"  {cond['type']}: {'True' if cond['status'] else 'False'} "
                  f"{cond['reason']}: {cond['message']}")
        if s["message"]:
            print(f"  not applied: {s['message']}")
        if s["uncommitted"]:
            print(f"  uncommitted changes: {', '.join(s['uncommitted'])}")
        for n in s["notes"]:
            print(f"  note: {n}")
    table = Table("SERVICE", "SYNC", "HEALTH", "COMMIT", "LAST SYNC", "FILE", "MESSAGE")
    for r in data["services"]:
        table.add_row(r["service"], r["sync"], r["health"], r["commit"][:12] or "-",
                      _when(r["last_sync"]), f"{r['file']}:{r['line']}" if r["line"]
                      else r["file"], r["message"] or r.get("health_message", ""))
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(watch)
    app.command()(diff)
    app.command()(status)
