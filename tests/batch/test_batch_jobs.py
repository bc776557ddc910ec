"""Batch jobs end to end on a real platform: a folder, a ModelArts .manifest, a CSV and a
JSONL each give ModelArts' output layout with the right results; a bad item fails alone;
the CLI creates, waits with progress, lists, shows logs and writes the results."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

import modelport
from modelport.errors import ModelportError
from tests.conftest import BIN, RunningPlatform
from tests.e2e.packages import predictor

FILES = """
class Predictor:
    def predict(self, file):
        if file.startswith(b"boom"):
            raise ValueError("this file makes the model fail")
        return {"size": len(file), "head": file[:4].decode()}
"""

TABLE = """
class Predictor:
    def predict(self, x, label):
        if x < 0:
            raise ValueError("x must be >= 0")
        return {"double": x * 2, "label": label.upper()}
"""


@pytest.fixture(scope="module")
def services(platform: RunningPlatform, tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("batch-pkgs")
    with modelport.Client(platform.url) as c:
        c.create(predictor(tmp, "files", FILES, [{"name": "file", "type": "file"}]),
                 name="batch-files")
        c.create(predictor(tmp, "table", TABLE, [{"name": "x", "type": "number"},
                                                 {"name": "label", "type": "text"}]),
                 name="batch-table")
    return {"files": "batch-files", "table": "batch-table"}


def run_job(platform: RunningPlatform, service: str, path: Path, out: Path
            ) -> tuple[dict, list[dict]]:
    with modelport.Client(platform.url) as c:
        job = c.batch_create(service, path, concurrency=2)
        assert job["status"] in ("queued", "running") and job["total"] > 0
        done = c.batch_wait(job["id"], timeout=300)
        manifest = c.batch_results(job["id"], out)
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    return done, lines


def result_of(out: Path, line: dict) -> dict:
    return json.loads((out / line["inference-loc"]).read_text())


def test_a_folder_job_in_modelarts_layout_with_a_bad_item_failing_alone(
        platform: RunningPlatform, services: dict, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"abcdefgh")
    (folder / "sub" / "b.bin").write_bytes(b"wxyz")
    (folder / "sub" / "a.bin").write_bytes(b"same name, other folder")
    (folder / "bad.bin").write_bytes(b"boom!")
    (folder / ".hidden").write_bytes(b"left out")
    out = tmp_path / "out"
    job, lines = run_job(platform, services["files"], folder, out)
    assert job["status"] == "succeeded", job
    assert (job["total"], job["done"], job["failed"]) == (4, 4, 1)
    assert sorted(line["source"] for line in lines) == ["a.bin", "bad.bin", "sub/a.bin",
                                                        "sub/b.bin"]
    by = {line["source"]: line for line in lines}
    assert by["a.bin"]["inference-loc"] == f"infer-result-{job['id']}/a.bin_result.txt"
    assert result_of(out, by["a.bin"]) == {"size": 8, "head": "abcd"}
    assert result_of(out, by["sub/b.bin"]) == {"size": 4, "head": "wxyz"}
    # the same file name in two folders still gets a result file of its own
    assert by["sub/a.bin"]["inference-loc"] != by["a.bin"]["inference-loc"]
    assert result_of(out, by["sub/a.bin"])["size"] == len(b"same name, other folder")
    assert by["bad.bin"]["result"] == "FAILED" and by["bad.bin"]["inference-loc"] == ""
    assert "this file makes the model fail" in by["bad.bin"]["error_message"]
    assert {line["result"] for line in lines if line["source"] != "bad.bin"} == {"SUCCESSFUL"}


def test_a_manifest_job_keeps_each_source_as_written(
        platform: RunningPlatform, services: dict, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "one.bin").write_bytes(b"1111")
    (tmp_path / "elsewhere.bin").write_bytes(b"22")
    manifest = tmp_path / "data" / "input.manifest"
    manifest.write_text(json.dumps({"source": "one.bin", "usage": "inference"}) + "\n"
                        + json.dumps({"source": str(tmp_path / "elsewhere.bin")}) + "\n")
    job, lines = run_job(platform, services["files"], manifest, tmp_path / "out")
    assert (job["total"], job["failed"]) == (2, 0)
    assert [line["source"] for line in lines] == ["one.bin", str(tmp_path / "elsewhere.bin")]
    assert [result_of(tmp_path / "out", line)["size"] for line in lines] == [4, 2]


def test_csv_rows_map_to_inputs_by_column_and_jsonl_lines_are_request_bodies(
        platform: RunningPlatform, services: dict, tmp_path: Path) -> None:
    table = tmp_path / "rows.csv"
    table.write_text("x,label\n1.5,cat\n-1,dog\n4,bird\n")
    job, lines = run_job(platform, services["table"], table, tmp_path / "csv-out")
    assert (job["total"], job["failed"]) == (3, 1)
    assert [line["source"] for line in lines] == ["rows.csv:2", "rows.csv:3", "rows.csv:4"]
    assert result_of(tmp_path / "csv-out", lines[0]) == {"double": 3.0, "label": "CAT"}
    assert lines[1]["result"] == "FAILED" and "x must be >= 0" in lines[1]["error_message"]

    bodies = tmp_path / "bodies.jsonl"
    bodies.write_text(json.dumps({"x": 2, "label": "a"}) + "\n\n"
                      + json.dumps({"x": 3, "nope": 1}) + "\n")
    job, lines = run_job(platform, services["table"], bodies, tmp_path / "jsonl-out")
    assert (job["total"], job["failed"]) == (2, 1)
    assert result_of(tmp_path / "jsonl-out", lines[0]) == {"double": 4, "label": "A"}
    assert "nope" in lines[1]["error_message"]  # the service's own input check says why


def test_bad_batch_input_gets_a_clear_error_before_anything_runs(
        platform: RunningPlatform, services: dict, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("not a batch")
    with modelport.Client(platform.url) as c:
        before = len(c.batches())
        with pytest.raises(ModelportError) as kind:
            c.batch_create(services["files"], tmp_path / "x.txt")
        assert kind.value.code == "batch.input_kind" and kind.value.fix
        rows = tmp_path / "r.csv"
        rows.write_text("1,2,3,4\n")
        with pytest.raises(ModelportError) as columns:
            c.batch_create(services["table"], rows)
        assert "4 columns" in columns.value.message
        with pytest.raises(ModelportError) as folder:  # a folder for a two-input service
            c.batch_create(services["table"], tmp_path)
        assert folder.value.code == "batch.needs_one_input"
        assert len(c.batches()) == before  # refused before any job was made
    # a raw upload that is not our archive is refused by the platform itself
    token = (platform.home / "admin.token").read_text().strip()
    r = httpx.post(platform.url + "/api/v1/batches", params={"service": services["files"]},
                   content=b"not a zip", headers={"Authorization": f"Bearer {token}"},
                   timeout=30)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "batch.archive"


def test_the_cli_creates_waits_lists_logs_and_writes_results(
        platform: RunningPlatform, services: dict, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        (folder / f"f{i}.bin").write_bytes(b"x" * (i + 1))
    cli = [str(BIN / "modelport"), "--home", str(platform.home), "batch"]

    made = subprocess.run([*cli, "create", services["files"], "--input", str(folder),
                           "--concurrency", "2", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    job = json.loads(made.stdout)
    assert set(job) >= {"id", "status", "total", "done", "failed"} and job["total"] == 5

    out = tmp_path / "out"
    waited = subprocess.run([*cli, "create", services["files"], "--input", str(folder),
                             "--wait", "--output", str(out)], capture_output=True, text=True,
                            timeout=300)
    assert waited.returncode == 0, waited.stderr
    assert "succeeded" in waited.stdout and "5/5" in waited.stdout
    manifests = list(out.glob("infer-result-*.manifest"))
    assert len(manifests) == 1 and len(manifests[0].read_text().splitlines()) == 5

    got = subprocess.run([*cli, "get", job["id"], "--json"], capture_output=True, text=True,
                         timeout=60)
    assert got.returncode == 0 and json.loads(got.stdout)["id"] == job["id"]
    listed = subprocess.run([*cli, "list"], capture_output=True, text=True, timeout=60)
    assert job["id"] in listed.stdout
    logs = subprocess.run([*cli, "logs", job["id"]], capture_output=True, text=True,
                          timeout=60)
    assert "created: 5 items (folder)" in logs.stdout
    missing = subprocess.run([*cli, "get", "nosuchjob"], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "nosuchjob" in missing.stdout + missing.stderr


def test_a_cancelled_job_runs_no_more_items_and_keeps_what_it_did(
        platform: RunningPlatform, services: dict, tmp_path: Path) -> None:
    bodies = tmp_path / "many.jsonl"
    bodies.write_text("".join(json.dumps({"x": i, "label": "n"}) + "\n" for i in range(2000)))
    with modelport.Client(platform.url) as c:
        job = c.batch_create(services["table"], bodies)
        cancelled = c.batch_cancel(job["id"])
        assert cancelled["status"] == "cancelled"
        later = c.batch(job["id"])
        assert later["status"] == "cancelled" and later["done"] < later["total"] == 2000
        with pytest.raises(ModelportError) as again:
            c.batch_cancel(job["id"])
        assert again.value.code == "batch.finished"
        manifest = c.batch_results(job["id"], tmp_path / "out")
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(lines) == 2000
    not_run = [line for line in lines if line["result"] == "FAILED"]
    assert not_run and {line["error_message"] for line in not_run} == {"cancelled"}
