"""`modelport batch`: create, get, list, cancel, logs and results of batch jobs.

A job's input (a folder, a ModelArts .manifest, a .csv or a .jsonl) is uploaded when it is
created, so it runs on the platform whatever this terminal does; `--wait` shows a progress
bar and `--output DIR` then writes the results in ModelArts' layout (docs/batch.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from modelport.cli.output import JsonOpt, UrlOpt, act, answered, emit, listing, out
from modelport.client import Client

batch_app = typer.Typer(help="Batch jobs: many inputs through one service, results in "
                        "ModelArts' layout.", no_args_is_help=True)

OutputOpt = Annotated[Path | None, typer.Option(
    "--output", help="write the results here (infer-result-ID.manifest and its folder)")]


def _line(job: dict[str, Any]) -> str:
    rate = f", {job['items_per_s']:g} items/s" if job.get("items_per_s") else ""
    failed = f", {job['failed']} failed" if job.get("failed") else ""
    return (f"batch {job['id']} ({job['service']}): {job['status']}, "
            f"{job['done']}/{job['total']} done{failed}{rate}")


def _wait(client: Client, job: dict[str, Any], as_json: bool) -> dict[str, Any]:
    if as_json:
        return answered(lambda: client.batch_wait(job["id"]), True, client)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[note]}"), console=out, transient=True) as bar:
        task = bar.add_task(f"batch {job['id']}", total=job["total"], note="")

        def show(now: dict[str, Any]) -> None:
            note = f"{now['failed']} failed" if now["failed"] else ""
            bar.update(task, completed=now["done"], note=note)

        return answered(lambda: client.batch_wait(job["id"], progress=show), False, client)


def create(service: Annotated[str, typer.Argument(help="the service that runs each item")],
           input: Annotated[Path, typer.Option(
               "--input", help="a folder (one item per file), a .manifest, a .csv (one item "
               "per row) or a .jsonl (one request body per line)")],
           output: OutputOpt = None,
           concurrency: Annotated[int, typer.Option(
               help="items of this job in flight at most (online requests keep the rest "
               "of the replicas)")] = 1,
           wait: Annotated[bool, typer.Option("--wait", help="wait for the job, with a "
                                              "progress bar")] = False,
           url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Create a batch job over INPUT; prints its id at once (or waits with --wait)."""
    with Client(url) as client:
        job = answered(lambda: client.batch_create(service, input, concurrency), as_json,
                       client)
        if wait or output is not None:
            job = _wait(client, job, as_json)
            if output is not None and job["status"] == "succeeded":
                manifest = answered(lambda: client.batch_results(job["id"], output), as_json,
                                    client)
                job["manifest"] = str(manifest)
    human = _line(job)
    if job.get("manifest"):
        human += f"\nresults: {job['manifest']}"
    elif job["status"] in ("queued", "running"):
        human += f"\nfollow it: modelport batch get {job['id']} --wait"
    emit(job, as_json, human)
    if job["status"] in ("failed", "cancelled"):
        raise typer.Exit(1)


def get(batch_id: Annotated[str, typer.Argument(help="the job's id")],
        wait: Annotated[bool, typer.Option("--wait", help="wait until it finishes")] = False,
        url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Show a batch job: status, items done and failed, items/s."""
    with Client(url) as client:
        job = answered(lambda: client.batch(batch_id), as_json, client)
        if wait:
            job = _wait(client, job, as_json)
    emit(job, as_json, _line(job))


def list_(service: Annotated[str, typer.Option(help="only this service's jobs")] = "",
          url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List batch jobs, newest first."""
    listing(url, as_json, lambda c: c.batches(service),
            ["ID", "SERVICE", "STATUS", "DONE", "FAILED", "ITEMS/S"],
            lambda j: [j["id"], j["service"], j["status"], f"{j['done']}/{j['total']}",
                       str(j["failed"]), f"{j['items_per_s']:g}"])


def cancel(batch_id: Annotated[str, typer.Argument(help="the job's id")],
           url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a batch job: items not yet run are not run; results so far are kept."""
    act(url, as_json, lambda c: c.batch_cancel(batch_id), _line)


def logs(batch_id: Annotated[str, typer.Argument(help="the job's id")],
         url: UrlOpt = None) -> None:
    """Print a batch job's log: created, items that failed or were run again, finished."""
    with Client(url) as client:
        text = answered(lambda: client.batch_log(batch_id), False, client)
    print(text, end="")


def results(batch_id: Annotated[str, typer.Argument(help="the job's id")],
            output: Annotated[Path, typer.Option("--output", help="the folder to write to")],
            url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Write a finished job's results in ModelArts' layout under --output."""
    act(url, as_json, lambda c: {"manifest": str(c.batch_results(batch_id, output))},
        lambda r: f"results: {r['manifest']}")


def register(app: typer.Typer) -> None:
    batch_app.command()(create)
    batch_app.command()(get)
    batch_app.command("list")(list_)
    batch_app.command()(cancel)
    batch_app.command()(logs)
    batch_app.command()(results)
    app.add_typer(batch_app, name="batch")
