"""The limit: a model package's predictor behind a bare Starlette app, no platform around it.

`bench/suite.py` runs it as ``python -m uvicorn limit_app:app --app-dir bench --loop uvloop
--http httptools --workers <nproc>`` (its own interpreter, so the package's libraries are the
bench's) with ``MODELPORT_LIMIT_PACKAGE=<package dir>``. Each worker process loads
``predict.py`` from the package, calls ``setup()`` once and calls ``predict`` per request,
inline on the event loop (no thread hop): this is what serving the model costs with nothing in
between.

The contract mirrors modelport's REST infer so the two are compared on the same requests:
``POST /v1/services/{name}/infer`` with a JSON object keyed by input name, or, for a package
with a single input, the raw ``application/octet-stream`` body; the answer is
``{"data": <predict's return value>}`` (modelport's envelope adds ``result`` and ``metadata``).
It decodes nothing by declared input type: the bench packages take JSON values or bytes as sent.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PACKAGE_ENV = "MODELPORT_LIMIT_PACKAGE"


def load_predictor(package: Path) -> Any:
    """Import ``<package>/predict.py`` (the class named in config.json) and run ``setup()``."""
    config = json.loads((package / "config.json").read_text())
    module_name, _, class_name = config.get("predictor", "predict:Predictor").partition(":")
    sys.path.insert(0, str(package))  # the predictor may import its siblings
    spec = importlib.util.spec_from_file_location(module_name, package / f"{module_name}.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"limit_app: cannot import {module_name}.py from {package}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    predictor = getattr(module, class_name or "Predictor")()
    predictor.setup()
    return predictor


def build_app(package: Path) -> Starlette:
    config = json.loads((package / "config.json").read_text())
    inputs = [i["name"] for i in config.get("input", [])]
    predictor = load_predictor(package)
    predict = predictor.predict

    async def infer(request: Request) -> Response:
        body = await request.body()
        ctype = request.headers.get("content-type", "application/json")
        if ctype.startswith("application/octet-stream"):
            if len(inputs) != 1:
                return JSONResponse({"error": "octet-stream needs a single-input package"}, 400)
            kwargs = {inputs[0]: body}
        else:
            kwargs = orjson.loads(body)
        return Response(orjson.dumps({"data": predict(**kwargs)}),
                        media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(routes=[Route("/v1/services/{name}/infer", infer, methods=["POST"]),
                             Route("/health", health)])


_package = os.environ.get(PACKAGE_ENV)
if not _package:
    raise SystemExit(f"limit_app: set {PACKAGE_ENV} to a model package directory "
                     "(bench/suite.py does this)")
app = build_app(Path(_package).resolve())
