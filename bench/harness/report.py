"""What a run reports besides its figures: the context that makes numbers comparable
(machine, load, commit, exact command), the suite's reference/modelport table, and the
record of a run in bench/RESULTS.md.

These VMs are noisy: the load average before and after a run, and the commit with its
``+uncommitted changes`` mark, say which runs may be compared at all.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.paths import BENCH, ROOT

RESULTS = BENCH / "RESULTS.md"
RECORD_HEADING = "## make bench (wrk suite)"


# --------------------------------------------------------------------------- context
def machine() -> str:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"nproc={cpus}  cpu={model or platform.processor() or '?'}  "
            f"python={platform.python_version()} ({platform.python_implementation()})  "
            f"os={platform.system()} {platform.release()}")


def load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           text=True, capture_output=True).stdout.strip()
    return sha + (" (+uncommitted changes)" if dirty else "")


def command(script: str, argv: list[str] | None = None) -> str:
    """The command that ran ``script`` (its ``__file__``), paths relative to the checkout,
    so it can be pasted into a shell there."""
    python = sys.executable
    if python.startswith(str(ROOT)):
        python = os.path.relpath(python, ROOT)
    args = argv or sys.argv[1:]
    return shlex.join([python, os.path.relpath(script, ROOT), *args])


def context(script: str, argv: list[str] | None = None) -> str:
    """The header of most bench scripts: machine, load before the run, commit, command."""
    return (f"machine: {machine()}\n"
            f"load:    {load()} (1/5/15 min, before the run; other work on the machine skews "
            "the numbers)\n"
            f"commit:  {commit()}\n"
            f"command: {command(script, argv)}")


# --------------------------------------------------------------------------- the suite's table
@dataclass
class Row:
    figure: str
    ref: str
    value: str
    vs: str
    target: str = ""
    result: str = ""


def render(rows: list[Row]) -> str:
    """Aligned columns; a row with neither reference nor value is a section heading."""
    head = Row("figure", "reference", "modelport", "vs ref", "target", "result")
    cols = [max(len(getattr(r, f)) for r in [head, *rows])
            for f in ("figure", "ref", "value", "vs", "target", "result")]

    def line(r: Row) -> str:
        if not r.ref and not r.value:  # a section heading
            return r.figure
        return (f"{r.figure:<{cols[0]}}  {r.ref:>{cols[1]}}  {r.value:>{cols[2]}}  "
                f"{r.vs:>{cols[3]}}  {r.target:<{cols[4]}}  {r.result}").rstrip()

    out = [line(head), "-" * (sum(cols) + 10)]
    out += [line(r) for r in rows]
    return "\n".join(out)


# --------------------------------------------------------------------------- RESULTS.md
def record(text: str, date: str, sha: str, command: str) -> None:
    """Add this run under RECORD_HEADING in RESULTS.md, newest first, keeping the rest."""
    entry = (f"### {date}\n\n- **commit:** `{sha}`\n- **command:** `{command}`\n\n"
             f"```\n{text.rstrip()}\n```\n\n")
    doc = RESULTS.read_text() if RESULTS.exists() else "# bench results\n\n"
    if RECORD_HEADING not in doc:
        section = (f"{RECORD_HEADING}\n\nEach `make bench` run recorded with `--record` "
                   "(`bench/suite.py`), newest first;\nbench/README.md says how to read "
                   "the table.\n\n")
        title, rest = "", doc
        if doc.startswith("# "):  # at the top: right after the title line
            title, _, rest = doc.partition("\n")
            title += "\n\n"
        rest = rest.lstrip("\n")
        if rest and not rest.startswith("## "):  # untitled results must not join the section
            rest = "## Earlier results\n\n" + rest
        doc = title + section + rest
    head, _, rest = doc.partition(RECORD_HEADING)
    # newest first: right after the section's intro paragraph
    intro_end = rest.index("\n\n", rest.index("\n\n") + 2) + 2
    RESULTS.write_text(head + RECORD_HEADING + rest[:intro_end] + entry + rest[intro_end:])
