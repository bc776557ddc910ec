"""`modelport xds bootstrap | envoy-bootstrap | status`: the platform's xDS server seen
from its clients (docs/xds.md)."""

from __future__ import annotations

import datetime
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from modelport.cli.output import JsonOpt, fail, out
from modelport.errors import Kind, ModelportError
from modelport.xds_bootstrap import envoy_bootstrap, grpc_bootstrap, xds_address

HomeOpt = Annotated[str | None, typer.Option(help="platform home (env MODELPORT_HOME)")]
XdsOpt = Annotated[str, typer.Option("--xds", help="xDS server host:port (default: the one "
                                     "`up --xds-port` started for --home)")]


def _address(home: str | None, given: str, as_json: bool = False) -> str:
    if given:
        return given
    from modelport.home import resolve_home

    root = resolve_home(home)
    try:
        return xds_address(root)
    except (OSError, ValueError, KeyError):
        fail(ModelportError(Kind.NOT_FOUND, "xds.not_running",
                            f"the platform at {root} runs no xDS server",
                            "start it with `modelport up --xds-port 0` (or a port), or name "
                            "one with --xds HOST:PORT"), as_json)


def bootstrap(home: HomeOpt = None, xds: XdsOpt = "",
              node_id: Annotated[str, typer.Option(help="the client's node id")] = "") -> None:
    """Print the grpc xDS bootstrap JSON: GRPC_XDS_BOOTSTRAP_CONFIG="$(modelport xds
    bootstrap)", then dial xds:///SERVICE."""
    typer.echo(json.dumps(grpc_bootstrap(_address(home, xds), node_id), indent=2))


def envoy_bootstrap_cmd(home: HomeOpt = None, xds: XdsOpt = "",
                        admin_port: Annotated[int, typer.Option(
                            help="Envoy admin port on 127.0.0.1 (0: a free one)")] = 0) -> None:
    """Print an Envoy bootstrap whose only dynamic config is this platform's ADS."""
    typer.echo(json.dumps(envoy_bootstrap(_address(home, xds), admin_port), indent=2))


def status(home: HomeOpt = None, xds: XdsOpt = "", as_json: JsonOpt = False) -> None:
    """Each connected xDS client (Envoy or grpc), the versions it ACKed, its last NACK."""
    address = _address(home, xds, as_json)
    clients = _fetch_status(address, as_json)
    if as_json:
        out.print_json(json.dumps({"xds": address, "clients": clients}))
        return
    if not clients:
        out.print(f"xds {address}: no client connected")
        return
    table = Table("node", "agent", "type", "resources", "acked", "status", "last NACK")
    for c in clients:
        for t in c["types"]:
            nack = t.get("nack") or {}
            table.add_row(c["node"], c["user_agent"], t["type"], ", ".join(t["names"]) or "-",
                          t["acked_version"] or "-", t["status"],
                          f"v{nack['version']}: {nack['message']}" if nack else "")
    out.print(table)


def _fetch_status(address: str, as_json: bool) -> list[dict[str, Any]]:
    import grpc

    from modelport.xds_protos import require

    require()  # envoy's status API, from xds-protos beside the environment
    from envoy.admin.v3 import config_dump_shared_pb2 as dump
    from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc

    short = {"Listener": "LDS", "RouteConfiguration": "RDS", "Cluster": "CDS",
             "ClusterLoadAssignment": "EDS"}
    try:
        with grpc.insecure_channel(address) as ch:
            resp = csds_pb2_grpc.ClientStatusDiscoveryServiceStub(ch).FetchClientStatus(
                csds_pb2.ClientStatusRequest(), timeout=10)
    except grpc.RpcError as exc:
        fail(ModelportError(Kind.UNAVAILABLE, "xds.unreachable",
                            f"the xDS server at {address} did not answer: {exc.code().name}",
                            "check that `modelport up --xds-port` runs (its xds.log says why "
                            "not)"), as_json)
    clients = []
    for config in resp.config:
        types: dict[str, dict[str, Any]] = {}
        for g in config.generic_xds_configs:
            kind = short.get(g.type_url.rsplit(".", 1)[-1], g.type_url)
            entry = types.setdefault(kind, {"type": kind, "names": [], "acked_version":
                                            g.version_info, "status":
                                            dump.ClientResourceStatus.Name(g.client_status)})
            if g.name:
                entry["names"].append(g.name)
            if g.HasField("error_state"):
                entry["nack"] = {"version": g.error_state.version_info,
                                 "message": g.error_state.details,
                                 "at": datetime.datetime.fromtimestamp(
                                     g.error_state.last_update_attempt.seconds,
                                     datetime.UTC).isoformat()}
        clients.append({"node": config.node.id, "user_agent": config.node.user_agent_name,
                        "types": list(types.values())})
    return clients


def register(app: typer.Typer) -> None:
    xds_app = typer.Typer(help="the platform's xDS server (Envoy, proxyless gRPC)",
                          no_args_is_help=True)
    xds_app.command("bootstrap")(bootstrap)
    xds_app.command("envoy-bootstrap")(envoy_bootstrap_cmd)
    xds_app.command("status")(status)
    app.add_typer(xds_app, name="xds")
