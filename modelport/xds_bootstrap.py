"""Bootstrap documents for clients of the platform's xDS server (docs/xds.md).

A proxyless gRPC client reads its bootstrap from ``GRPC_XDS_BOOTSTRAP`` (a file) or
``GRPC_XDS_BOOTSTRAP_CONFIG`` (the JSON itself) and then dials ``xds:///SERVICE``. Envoy
reads its bootstrap from ``-c FILE``: here its only dynamic config is the platform's ADS
(listeners and clusters over one aggregated stream), reached through one static cluster.

Standard library only: the launcher, which writes Envoy's, imports nothing heavier.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from modelport.home import HomeLayout

#: the static cluster through which Envoy reaches the ADS server
ADS_CLUSTER = "modelport-xds"
#: Envoy's limit on open downstream connections (it warns at start without one)
MAX_CONNECTIONS = 50_000


def xds_address(home: Path) -> str:
    """host:port of the xDS server of the platform at ``home``, as `up --xds-port` bound
    it; raises FileNotFoundError when that platform runs none."""
    ports = json.loads((HomeLayout(home).run / "xds.ports.json").read_text())
    return f"127.0.0.1:{int(ports['port'])}"


def grpc_bootstrap(address: str, node_id: str = "") -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    return {
        "xds_servers": [{"server_uri": f"{host}:{port}",
                         "channel_creds": [{"type": "insecure"}],
                         "server_features": ["xds_v3"]}],
        "node": {"id": node_id or f"modelport-grpc-{uuid.uuid4().hex[:12]}",
                 "cluster": "modelport-clients",
                 "locality": {"region": "modelport"}},
    }


def envoy_bootstrap(address: str, admin_port: int = 0, node_id: str = "modelport-envoy"
                    ) -> dict[str, Any]:
    host, _, port = address.rpartition(":")
    ads = {"ads": {}, "resource_api_version": "V3"}
    return {
        "node": {"id": node_id, "cluster": "modelport-edge"},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "set_node_on_first_message_only": True,
                           "grpc_services": [{"envoy_grpc": {"cluster_name": ADS_CLUSTER}}]},
            "lds_config": ads,
            "cds_config": ads,
        },
        "static_resources": {"clusters": [{
            "name": ADS_CLUSTER, "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3."
                             "HttpProtocolOptions",
                    "explicit_http_config": {"http2_protocol_options": {}}}},
            "load_assignment": {"cluster_name": ADS_CLUSTER, "endpoints": [{"lb_endpoints": [{
                "endpoint": {"address": {"socket_address": {
                    "address": host, "port_value": int(port)}}}}]}]},
        }]},
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.resource_monitors."
                         "downstream_connections.v3.DownstreamConnectionsConfig",
                "max_active_downstream_connections": MAX_CONNECTIONS}}]},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1",
                                                 "port_value": admin_port}}},
    }
