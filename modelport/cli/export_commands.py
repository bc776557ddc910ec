"""`modelport export kubernetes NAME|FILE...`: services as manifests a cluster accepts.

A NAME is a deployed service (its spec and the split that serves now, read from the
platform); a FILE is a ModelService YAML (rendered offline, no platform needed). One YAML
file per service, plus the worker shim's ConfigMap every pod mounts (docs/fleet.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from modelport.cli.output import JsonOpt, UrlOpt, answered, emit, fail
from modelport.client import Client
from modelport.errors import ModelportError, invalid

export_app = typer.Typer(help="Render services for another engine (Kubernetes).",
                         no_args_is_help=True)


def _targets(sources: list[str], url: str | None, as_json: bool) -> list[Any]:
    from modelport.export.kubernetes import target_from_spec, target_from_view
    from modelport.spec.service import load_service_file

    targets: list[Any] = []
    names: list[str] = []
    for source in sources:
        path = Path(source)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            try:
                docs = load_service_file(path.read_text(), str(path))
            except OSError as exc:
                fail(invalid("export.file_unreadable", f"cannot read {path}: {exc}",
                             "give a ModelService YAML file or a deployed service's name"),
                     as_json)
            except ModelportError as exc:
                fail(exc, as_json)
            targets += [target_from_spec(d.metadata.name, d.spec,
                                         annotations=d.metadata.annotations) for d in docs]
        else:
            names.append(source)
    if names:
        with Client(url) as client:
            for name in names:
                view = answered(lambda n=name: client.get(n), as_json, client)
                targets.append(target_from_view(view))
    return targets


def kubernetes(
    services: Annotated[list[str], typer.Argument(
        help="deployed service names, or ModelService YAML files", show_default=False)],
    output: Annotated[Path | None, typer.Option(
        "--output", help="write NAME.yaml per service here (default: print to stdout)")] = None,
    image: Annotated[str, typer.Option(
        "--image", help="each version's image; {name} and {version} are filled in")
    ] = "modelport/{name}:v{version}",
    namespace: Annotated[str, typer.Option("--namespace", "-n",
                                           help="namespace of every object")] = "",
    url: UrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """Deployment per version (readiness from the package's setup), Services, HPA, PDB,
    ConfigMap/Secret for env: validated by `kubernetes-validate --strict`."""
    try:
        from modelport.export.kubernetes import render_all
    except ImportError as exc:
        fail(invalid("export.kubernetes_missing", f"the Kubernetes client is not installed "
                     f"({exc})", "pip install 'modelport[kubernetes]'"), as_json)
    targets = _targets(services, url, as_json)
    files = render_all(targets, image=image, namespace=namespace)
    if output is None:
        if as_json:
            emit({"files": files}, True)
        else:
            print(yaml.safe_dump_all([o for objs in files.values() for o in objs],
                                     sort_keys=False), end="")
        return
    output.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for stem, objects in files.items():
        path = output / f"{stem}.yaml"
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        written.append(str(path))
    emit({"files": written, "services": [t.name for t in targets]}, as_json,
         "\n".join(f"wrote {p}" for p in written) + "\napply with: kubectl apply -f "
         f"{output}  (push each version's image first: {image})")


def register(app: typer.Typer) -> None:
    export_app.command("kubernetes")(kubernetes)
    app.add_typer(export_app, name="export")
