"""The `modelport` command line: `up` runs the platform; the rest are clients of its REST API.

Client commands find the platform themselves (`modelport where` says which; `--url` or
MODELPORT_URL overrides it, modelport/discovery.py) and take `--json` for scripts. A
failure is an `error: ...` line saying what to do, never a traceback unless `--debug`.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from modelport import discovery
from modelport.cli.output import (
    DEBUG_ENV,
    JsonOpt,
    UrlOpt,
    WaitOpt,
    act,
    answered,
    debugging,
    emit,
    err,
    fail,
    listing,
)
from modelport.client import Client, DeployFailed
from modelport.errors import Kind, ModelportError


class _App(typer.Typer):
    """The CLI: an error no command foresaw is still one line (a traceback with --debug)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            if debugging():
                raise
            print(f"error: {type(exc).__name__}: {exc} (this is a modelport bug: rerun with "
                  "--debug for the traceback and report it)", file=sys.stderr)
            sys.exit(1)


app = _App(help="modelport: turn a model package into an online service.",
           no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def global_options(
    token: Annotated[str | None, typer.Option(
        "--token", help="credential for client commands (env MODELPORT_TOKEN); default: "
        "the `modelport login` token, else the found platform's <home>/admin.token")] = None,
    home: Annotated[str | None, typer.Option(
        "--home", help="platform home: client commands talk to the platform running on it "
        "and use its admin.token (env MODELPORT_HOME)")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="show the traceback of a failure")] = False,
) -> None:
    """modelport: turn a model package into an online service."""
    if token:
        os.environ["MODELPORT_TOKEN"] = token
    if home:
        os.environ["MODELPORT_HOME"] = home
    if debug:
        os.environ[DEBUG_ENV] = "1"


def _progress(as_json: bool):  # noqa: ANN202 - a small closure factory
    last: dict[str, str] = {}

    def show(svc: dict[str, Any]) -> None:
        line = f"{svc['phase']}: {svc['message']}"
        if not as_json and last.get("line") != line:
            err.print(f"  {line}", highlight=False, markup=False)
            last["line"] = line

    return show


def _describe(svc: dict[str, Any]) -> str:
    text = (f"name:    {svc['name']}\nurl:     {svc['url']}\nstatus:  {svc['phase']}"
            f" (version {svc['serving_version'] or '-'}) {svc['message']}\n\n"
            f"call with curl:\n  {svc['examples']['curl']}\n\ncall with Python:\n"
            + "\n".join("  " + ln for ln in svc["examples"]["python"].splitlines()))
    if svc.get("events"):  # `get` carries the recent ones
        import datetime

        text += "\n\nrecent events:\n" + "\n".join(
            f"  {datetime.datetime.fromtimestamp(e['ts']).strftime('%H:%M:%S')}  "
            f"{e['type']:<7} {e['reason']:<16} "
            f"{'v' + str(e['version']) if e['version'] else '':<4} {e['message']}"
            for e in svc["events"])
    return text


@app.command()
def up(
    home: Annotated[str | None, typer.Option(help="platform home (env MODELPORT_HOME)")] = None,
    port: Annotated[int, typer.Option(help="HTTP port; 0 = pick a free one")] = 8000,
    grpc_port: Annotated[int, typer.Option(help="public gRPC port; 0 = pick a free one")] = 0,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    deploy: Annotated[list[Path] | None, typer.Option(
        help="package directory or zip to deploy once ready (repeatable)")] = None,
    config: Annotated[Path | None, typer.Option(
        help="directory of service YAML in a git work tree, kept in sync by a watcher")] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="no credentials needed for anything: throwaway local experiments "
        "only (refused on a non-loopback --host)")] = False,
    ray: Annotated[str, typer.Option(
        "--ray", envvar="MODELPORT_RAY_ADDRESS", help="Ray cluster address (host:port): "
        "replicas run on its nodes, a runtime per node (docs/fleet.md); needs "
        "modelport[ray]")] = "",
    xds_port: Annotated[int | None, typer.Option(
        help="serve xDS (ADS) here for Envoy and proxyless gRPC clients (docs/xds.md); "
        "0 = pick a free one")] = None,
    envoy_port: Annotated[int | None, typer.Option(
        help="run Envoy in front of the gateways on this port, configured over xDS (implies "
        "--xds-port; docs/xds.md); 0 = pick a free one")] = None,
    gateways: Annotated[int, typer.Option(
        min=1, help="gateway processes (each on ports of its own; Envoy spreads over "
        "them)")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Start registry, builder, runtime and gateway; Ctrl-C stops them all."""
    from modelport.cli.keys import is_loopback
    from modelport.home import resolve_home

    if no_auth and not is_loopback(host):
        err.print(f"error: --no-auth refuses to listen on {host}: anyone who can reach it could "
                  "run code on this machine; bind 127.0.0.1, or drop --no-auth",
                  highlight=False, markup=False)
        raise typer.Exit(2)
    root = resolve_home(home)
    if running := discovery.running(root):
        fail(ModelportError(Kind.CONFLICT, "platform.running",
                            f"a platform already runs on {root}: {running['url']} (pid "
                            f"{running['pid']})", "use it (`modelport where` shows it), stop it "
                            f"first (Ctrl-C in its terminal, or kill {running['pid']}), or "
                            "pick another --home"), as_json)
    if port and not _port_free(host, port):
        fail(ModelportError(Kind.CONFLICT, "platform.port_in_use",
                            f"port {port} on {host} is in use by another program",
                            "pick another with --port N or `make up PORT=N`, or --port 0 for "
                            "a free one; `modelport where` shows whether a modelport platform "
                            "already answers there"), as_json)
    if envoy_port is not None:
        from modelport.edge import EnvoyMissing, find_binary

        try:
            find_binary()
        except EnvoyMissing as exc:
            fail(ModelportError(Kind.NOT_FOUND, "envoy.not_found", exc.message, exc.fix),
                 as_json)
        if envoy_port and envoy_port in (port, grpc_port):
            fail(ModelportError(Kind.CONFLICT, "platform.port_in_use",
                                f"--envoy-port {envoy_port} is also the gateway's port",
                                "give Envoy a port of its own, or --envoy-port 0 for a free "
                                "one"), as_json)
        if envoy_port and not _port_free(host, envoy_port):
            fail(ModelportError(Kind.CONFLICT, "platform.port_in_use",
                                f"--envoy-port {envoy_port} on {host} is in use by another "
                                "program", "pick another with --envoy-port N, or 0 for a free "
                                "one"), as_json)
    # the supervisor runs for the platform's whole life: it replaces this process (same pid,
    # so signals and process trees are unchanged) with `python -m modelport.launcher`, which
    # imports none of the CLI's or SDK's libraries (modelport/launcher.py says why)
    argv = [sys.executable, "-m", "modelport.launcher", "up", "--home", str(root),
            "--host", host, "--port", str(port), "--grpc-port", str(grpc_port)]
    if config is not None:
        argv += ["--config", str(config)]
    for pkg in deploy or []:
        argv += ["--deploy", str(pkg)]
    if no_auth:
        argv.append("--no-auth")
    if ray:
        argv += ["--ray", ray]
    if xds_port is not None:
        argv += ["--xds-port", str(xds_port)]
    if envoy_port is not None:
        argv += ["--envoy-port", str(envoy_port)]
    if gateways != 1:
        argv += ["--gateways", str(gateways)]
    if as_json:
        argv.append("--json")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def _port_free(host: str, port: int) -> bool:
    """Whether the gateway could bind ``host:port`` now (as uvicorn does: SO_REUSEADDR, so a
    port in TIME_WAIT counts as free)."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError:
        return False
    return True


def _deploy_example(url: str, pkg: Path, home: Path | None = None) -> None:
    """Deploy a package under its config name (idempotent across restarts) and show a call."""
    from modelport.package import load_package
    from modelport.spec.service import NAME_RE

    try:
        name = load_package(pkg).name if pkg.is_dir() else pkg.stem
        name = name if NAME_RE.match(name) else None
        token = None
        if home is not None:  # this platform's own admin, whatever the shell's MODELPORT_TOKEN
            from modelport.home import HomeLayout

            path = HomeLayout(home).admin_token
            token = path.read_text().strip() if path.exists() else None
        with Client(url, token=token) as client:
            try:
                svc = client.get(name) if name else None
                svc = client.update(name, pkg) if svc else client.create(pkg, name=name)
            except ModelportError as exc:
                if exc.code != "service.not_found":
                    raise
                svc = client.create(pkg, name=name)
        print(f"deployed {svc['name']} (version {svc['serving_version']}): {svc['url']}",
              flush=True)
        print(f"try: {svc['examples']['curl']}", flush=True)
        base = svc["url"].split("/v1/services/")[0]
        print(f"console: {base}/console#/services/{svc['name']}", flush=True)
    except (ModelportError, DeployFailed, httpx.TransportError, OSError) as exc:
        print(f"deploy of {pkg} failed: {exc}", file=sys.stderr, flush=True)


@app.command()
def create(
    package: Annotated[Path, typer.Argument(help="model zip or directory with config.json")],
    name: Annotated[str | None, typer.Option(help="service name (default: generated)")] = None,
    runtime: Annotated[str | None, typer.Option(
        help="where replicas run: process (default) or docker (an image per version)")] = None,
    url: UrlOpt = None, wait: WaitOpt = True, as_json: JsonOpt = False,
) -> None:
    """Create a service from a package; prints its name, URL and how to call it."""
    spec = json.dumps({"runtime": runtime}) if runtime else None
    with Client(url) as c:
        svc = answered(lambda: c.create(package, name=name, wait=wait, spec=spec,
                                       progress=_progress(as_json)), as_json, c)
    emit(svc, as_json, _describe(svc))


@app.command()
def update(
    name: Annotated[str, typer.Argument(help="service name")],
    package: Annotated[Path, typer.Argument(help="model zip or directory")],
    url: UrlOpt = None, wait: WaitOpt = True, as_json: JsonOpt = False,
) -> None:
    """Deploy a new version behind the same URL; the old one serves until the new one is ready."""
    with Client(url) as c:
        svc = answered(lambda: c.update(name, package, wait=wait, progress=_progress(as_json)),
                       as_json, c)
    emit(svc, as_json, svc["notice"] if svc.get("unchanged") else _describe(svc))


@app.command()
def apply(
    file: Annotated[Path, typer.Option("-f", "--file", help="ModelService YAML")],
    url: UrlOpt = None, wait: WaitOpt = True, as_json: JsonOpt = False,
) -> None:
    """Create or update the services a ModelService YAML declares."""
    from modelport.spec.service import load_service_file

    try:
        services = load_service_file(file.read_text(), str(file))
    except (ModelportError, OSError) as exc:
        fail(exc, as_json)
        return
    results = []
    with Client(url) as c:
        for svc in services:
            package = (file.parent / svc.spec.package).resolve() if svc.spec.package else None
            spec_doc = json.dumps(svc.model_dump(by_alias=True, exclude={"spec": {"package"}}))
            results.append(answered(functools.partial(
                c.apply, svc.metadata.name, spec_doc, package, wait=wait,
                progress=_progress(as_json)), as_json, c))
    emit(results, as_json, "\n\n".join(_describe(r) for r in results))


@app.command("list")
def list_(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List services."""
    listing(url, as_json, lambda c: c.list()["services"],
            ("NAME", "PHASE", "VERSION", "READY", "URL"),
            lambda s: (s["name"], s["phase"], str(s["serving_version"] or "-"),
                       str(s["ready_replicas"]), s["url"]))


@app.command()
def get(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Show a service: status, URL and call examples."""
    act(url, as_json, lambda c: c.get(name), _describe)


@app.command()
def stop(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Stop a service: its replicas finish their requests and stop; calls get 503."""
    act(url, as_json, lambda c: c.stop(name), lambda svc: f"stopping {name}: {svc['message']}")


@app.command()
def start(name: str, url: UrlOpt = None, wait: WaitOpt = True,
          as_json: JsonOpt = False) -> None:
    """Start a stopped (or failed) service again."""
    act(url, as_json, lambda c: c.start(name, wait=wait), _describe)


@app.command()
def restart(name: str, url: UrlOpt = None, wait: WaitOpt = True,
            as_json: JsonOpt = False) -> None:
    """Rolling restart: new replicas take the traffic once ready, the old ones drain."""
    act(url, as_json, lambda c: c.restart(name, wait=wait), _describe)


@app.command()
def delete(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a service (its model versions are kept)."""
    act(url, as_json, lambda c: c.delete(name), lambda data: f"deleted {name}")


@app.command()
def predict(
    name: str,
    inputs: Annotated[list[str] | None, typer.Argument(
        help="key=value (text/JSON) or key=@file (file contents)")] = None,
    url: UrlOpt = None, as_json: JsonOpt = False,
) -> None:
    """Call a service once: `modelport predict NAME text=hello image=@cat.jpg`."""
    values: dict[str, Any] = {}
    for item in inputs or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(ModelportError.from_dict({"kind": "invalid", "code": "cli.input",
                                            "message": f"{item!r} is not key=value",
                                            "fix": "write key=value or key=@file"}), as_json)
        try:
            values[key] = Path(value[1:]).read_bytes() if value.startswith("@") else value
        except OSError as exc:
            fail(exc, as_json)
    with Client(url) as c:
        # key=value pairs travel as form fields, so the gateway parses each by its declared type
        data = answered(lambda: c.predict_form(name, values), as_json, c)
    emit(data, as_json, json.dumps(data.get("data"), indent=2))


@app.command()
def versions(name: str, url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List a service's model versions and their build states."""
    listing(url, as_json, lambda c: c.versions(name),
            ("VERSION", "STATE", "KIND", "DIGEST", "ERROR"),
            lambda v: (str(v["number"]), v["state"], v["kind"], v["digest"][:19],
                       v["error"].splitlines()[0] if v["error"] else ""))


@app.command("build-log")
def build_log(model: str, version: Annotated[int, typer.Argument()] = 0,
              url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """Print the build log of a model version (default: the latest)."""
    with Client(url) as c:
        text = answered(lambda: c.build_log(model, version), as_json, c)
    if as_json:
        emit({"model": model, "version": version, "log": text}, True)
    else:
        sys.stdout.write(text)


@app.command()
def events(name: str, url: UrlOpt = None, as_json: JsonOpt = False,
           version: Annotated[int, typer.Option(help="only this model version's")] = 0,
           limit: Annotated[int, typer.Option(help="the newest N")] = 100) -> None:
    """Show a service's events, oldest first."""
    import datetime

    listing(url, as_json, lambda c: c.events(name, limit, version),
            ("TIME", "TYPE", "REASON", "VERSION", "MESSAGE"),
            lambda e: (datetime.datetime.fromtimestamp(e["ts"]).strftime("%H:%M:%S"),
                       e["type"], e["reason"], str(e["version"] or ""), e["message"]))


@app.command()
def serve(component: Annotated[str, typer.Argument(help="registry|builder|runtime|gateway")],
          home: Annotated[str | None, typer.Option()] = None,
          listen: Annotated[str, typer.Option()] = "") -> None:
    """Run one component in the foreground (what `up` starts for each)."""
    from modelport.home import resolve_home

    if component not in ("registry", "builder", "runtime", "gateway"):
        raise typer.BadParameter(f"unknown component {component!r}")
    argv = [sys.executable, "-m", f"services.{component}", "--home", str(resolve_home(home))]
    if listen:
        argv += ["--listen", listen]
    os.execv(sys.executable, argv)


from modelport.cli import batch_commands as _batch  # noqa: E402 - batch
from modelport.cli import export_commands as _export  # noqa: E402 - export kubernetes
from modelport.cli import gitops_commands as _gitops  # noqa: E402 - watch, diff, status
from modelport.cli import keys as _keys  # noqa: E402 - keys, login, users, audit
from modelport.cli import observe as _observe  # noqa: E402 - top, logs
from modelport.cli import where as _where  # noqa: E402 - where
from modelport.cli import xds_commands as _xds  # noqa: E402 - xds bootstrap, status

_batch.register(app)
_export.register(app)
_gitops.register(app)
_keys.register(app)
_xds.register(app)
_observe.register(app)
_where.register(app)

if __name__ == "__main__":
    app()
