"""The platform's routing as xDS resources (``xds-protos`` messages), for two kinds of client.

**Proxyless gRPC** (``grpc.insecure_channel("xds:///NAME")``), per service NAME:

- Listener ``NAME``: an ApiListener whose HttpConnectionManager takes its routes over RDS;
- RouteConfiguration ``NAME``: a request with ``x-model-version: N`` goes to version N's
  cluster (a pin to a version that is not served fails rather than landing elsewhere);
  the rest is split by ``spec.traffic`` over weighted clusters (among the versions of the
  split that have a healthy endpoint, renormalised, as the gateway's router does);
- Cluster ``NAME/vN`` per version, of type EDS, round robin;
- ClusterLoadAssignment ``NAME/vN``: the version's public gRPC ports
  (``services/runtime/direct_ports.py``), one locality per runtime, HEALTHY only while a
  ready replica backs it, DRAINING while its replicas drain.

**Envoy at the edge** (``modelport up --envoy-port``): Listener ``modelport-edge`` on the
Envoy port, one route table sending gRPC (``content-type: application/grpc``) to the
gateways' gRPC ports and everything else (REST, SSE, WebSocket upgrades) to their HTTP
ports; both clusters over EDS, health-checked, with outlier detection on connection
failures only, and retried (on another gateway) only where a request cannot have reached
a model: the connection failed or was refused, or the stream was reset before the request
was sent.

``check`` validates a snapshot before it is sent: every route names a cluster that exists,
every weighted split has a positive total, every cluster has its assignment, every port
is a port.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

# typed_config messages an operator's extra HTTP filters may name (json_format needs them
# in the descriptor pool): fault injection and Lua
import envoy.extensions.filters.http.fault.v3.fault_pb2  # noqa: F401
import envoy.extensions.filters.http.lua.v3.lua_pb2  # noqa: F401
from envoy.config.cluster.v3 import cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    config_source_pb2,
    health_check_pb2,
    protocol_pb2,
)
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import string_pb2
from google.protobuf import any_pb2, duration_pb2, json_format, wrappers_pb2
from google.protobuf.message import Message

from services.xds.platform_state import DRAINING, HEALTHY, PlatformState, ServiceState

log = logging.getLogger(__name__)

LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
#: the order a server sends a whole update in: clusters first (a route never names one
#: the client has not been told of), then listeners and routes, endpoints last, so that in
#: a rolling update the route to the new version is in force before the old version's
#: endpoints turn DRAINING (make before break; a new cluster waits for its endpoints)
TYPES = (CLUSTER, LISTENER, ROUTE, ENDPOINT)
SHORT = {LISTENER: "LDS", ROUTE: "RDS", CLUSTER: "CDS", ENDPOINT: "EDS"}
#: the types whose every response holds the whole set a client asked for (absent = deleted)
FULL_SET = (LISTENER, CLUSTER)

VERSION_HEADER = "x-model-version"
EDGE = "modelport-edge"
GATEWAYS_HTTP = "modelport-gateways-http"
GATEWAYS_GRPC = "modelport-gateways-grpc"
_ROUTER = "envoy.filters.http.router"
#: which requests the edge retries: only those that provably reached no gateway, so no
#: model can have run them (docs/serving.md, "at most once")
EDGE_RETRY_ON = "connect-failure,refused-stream,reset-before-request"

Resources = dict[str, dict[str, Message]]


@dataclass
class Snapshot:
    """Resources by type and name, for one client kind."""
    resources: Resources = field(default_factory=lambda: {t: {} for t in TYPES})

    def add(self, type_url: str, name: str, message: Message) -> None:
        self.resources[type_url][name] = message

    def of(self, type_url: str) -> dict[str, Message]:
        return self.resources.get(type_url, {})


def cluster_name(service: str, version: int) -> str:
    return f"{service}/v{version}"


def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3)


def _packed(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def _router() -> hcm.HttpFilter:
    return hcm.HttpFilter(name=_ROUTER, typed_config=_packed(router_pb2.Router()))


def _eds_cluster(name: str) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=name, type=cluster_pb2.Cluster.EDS, lb_policy=cluster_pb2.Cluster.ROUND_ROBIN,
        connect_timeout=duration_pb2.Duration(seconds=2),
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads(),
                                                                service_name=name))


_HEALTH = {HEALTHY: health_check_pb2.HEALTHY, DRAINING: health_check_pb2.DRAINING}


def _assignment(name: str, endpoints: Iterable[tuple[str, int, str, str]]
                ) -> endpoint_pb2.ClusterLoadAssignment:
    """Endpoints (host, port, health, locality) grouped by locality; each locality
    weighs as many as it has healthy endpoints (grpc ignores a locality without a weight)."""
    by_locality: dict[str, list[endpoint_components_pb2.LbEndpoint]] = {}
    for host, port, health, locality in endpoints:
        by_locality.setdefault(locality, []).append(endpoint_components_pb2.LbEndpoint(
            endpoint=endpoint_components_pb2.Endpoint(address=address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address=host, port_value=port))),
            health_status=_HEALTH.get(health, health_check_pb2.UNHEALTHY)))
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=[
        endpoint_components_pb2.LocalityLbEndpoints(
            locality=base_pb2.Locality(region="modelport", zone=locality),
            load_balancing_weight=wrappers_pb2.UInt32Value(value=max(1, sum(
                e.health_status == health_check_pb2.HEALTHY for e in lbs))),
            lb_endpoints=lbs)
        for locality, lbs in sorted(by_locality.items())])


def split_weights(service: ServiceState) -> list[tuple[int, int]]:
    """(version, weight) of the unpinned split, in basis points summing to 10000: the
    versions of the split with a healthy endpoint, renormalised over them; all of the
    split when none has one (the calls then fail, as they would at the gateway)."""
    split = [v for v in service.versions if v.percent > 0]
    if not split and service.versions:
        split = [max(service.versions, key=lambda v: v.version)]
    serving = [v for v in split if v.healthy] or split
    total = sum(v.percent for v in serving) or float(len(serving))
    weights = [(v.version, max(1, round((v.percent or 1.0) / total * 10000))) for v in serving]
    if weights:  # rounding: the last one takes the difference
        rest = 10000 - sum(w for _, w in weights[:-1])
        weights[-1] = (weights[-1][0], max(1, rest))
    return weights


def _service_routes(service: ServiceState) -> route_pb2.RouteConfiguration:
    routes = [rc.Route(
        name=f"pin-v{v.version}",
        match=rc.RouteMatch(prefix="", headers=[rc.HeaderMatcher(
            name=VERSION_HEADER, string_match=string_pb2.StringMatcher(exact=str(v.version)))]),
        route=rc.RouteAction(cluster=cluster_name(service.name, v.version)))
        for v in service.versions]
    # a pin to a version this service does not serve must not land on another one
    routes.append(rc.Route(name="pin-unknown", match=rc.RouteMatch(prefix="", headers=[
        rc.HeaderMatcher(name=VERSION_HEADER, present_match=True)]),
        non_forwarding_action=rc.NonForwardingAction()))
    weights = split_weights(service)
    if weights:
        routes.append(rc.Route(name="split", match=rc.RouteMatch(prefix=""), route=rc.RouteAction(
            weighted_clusters=rc.WeightedCluster(clusters=[
                rc.WeightedCluster.ClusterWeight(name=cluster_name(service.name, version),
                                                 weight=wrappers_pb2.UInt32Value(value=w))
                for version, w in weights]))))
    return route_pb2.RouteConfiguration(name=service.name, virtual_hosts=[rc.VirtualHost(
        name=service.name, domains=["*"], routes=routes)])


def proxyless(state: PlatformState, extra_filters: list[hcm.HttpFilter] | None = None
              ) -> Snapshot:
    """Resources for grpc clients of ``xds:///NAME`` (see the module doc)."""
    snap = Snapshot()
    filters = [*(extra_filters or []), _router()]
    for service in state.services:
        manager = hcm.HttpConnectionManager(
            stat_prefix=service.name, http_filters=filters,
            rds=hcm.Rds(config_source=_ads(), route_config_name=service.name))
        snap.add(LISTENER, service.name, listener_pb2.Listener(
            name=service.name,
            api_listener=api_listener_pb2.ApiListener(api_listener=_packed(manager))))
        snap.add(ROUTE, service.name, _service_routes(service))
        for v in service.versions:
            name = cluster_name(service.name, v.version)
            snap.add(CLUSTER, name, _eds_cluster(name))
            snap.add(ENDPOINT, name, _assignment(
                name, ((e.host, e.port, e.health, e.locality) for e in v.endpoints)))
    return snap


def edge(state: PlatformState, host: str, port: int) -> Snapshot:
    """Resources for the Envoy in front of the gateways (see the module doc)."""
    snap = Snapshot()
    manager = hcm.HttpConnectionManager(
        stat_prefix="modelport", codec_type=hcm.HttpConnectionManager.AUTO,
        rds=hcm.Rds(config_source=_ads(), route_config_name=EDGE),
        http_filters=[_router()],
        upgrade_configs=[hcm.HttpConnectionManager.UpgradeConfig(upgrade_type="websocket")],
        # long answers and streams (SSE, token streams) are bounded by the gateway's own
        # deadlines, not by Envoy's 5-minute default stream idle timeout
        stream_idle_timeout=duration_pb2.Duration(seconds=0),
        # the client's address goes on in x-forwarded-for; a client's x-request-id is kept
        use_remote_address=wrappers_pb2.BoolValue(value=True),
        preserve_external_request_id=True)
    snap.add(LISTENER, EDGE, listener_pb2.Listener(
        name=EDGE, address=address_pb2.Address(socket_address=address_pb2.SocketAddress(
            address=host, port_value=port)),
        filter_chains=[listener_components_pb2.FilterChain(filters=[
            listener_components_pb2.Filter(name="envoy.filters.network.http_connection_manager",
                                           typed_config=_packed(manager))])]))
    # each retry to another gateway than the one that failed
    retry = rc.RetryPolicy(
        retry_on=EDGE_RETRY_ON, num_retries=wrappers_pb2.UInt32Value(value=2),
        retry_host_predicate=[rc.RetryPolicy.RetryHostPredicate(
            name="envoy.retry_host_predicates.previous_hosts",
            typed_config=_packed(_previous_hosts()))],
        host_selection_retry_max_attempts=3)
    no_timeout = duration_pb2.Duration(seconds=0)
    snap.add(ROUTE, EDGE, route_pb2.RouteConfiguration(name=EDGE, virtual_hosts=[rc.VirtualHost(
        name="modelport", domains=["*"], routes=[
            rc.Route(name="grpc", match=rc.RouteMatch(
                prefix="/", grpc=rc.RouteMatch.GrpcRouteMatchOptions()),
                     route=rc.RouteAction(cluster=GATEWAYS_GRPC, timeout=no_timeout,
                                          retry_policy=retry)),
            rc.Route(name="http", match=rc.RouteMatch(prefix="/"),
                     route=rc.RouteAction(cluster=GATEWAYS_HTTP, timeout=no_timeout,
                                          retry_policy=retry))])]))
    gateways = state.gateways
    snap.add(CLUSTER, GATEWAYS_HTTP, _gateway_cluster(GATEWAYS_HTTP, grpc=False))
    snap.add(CLUSTER, GATEWAYS_GRPC, _gateway_cluster(GATEWAYS_GRPC, grpc=True))
    snap.add(ENDPOINT, GATEWAYS_HTTP, _assignment(
        GATEWAYS_HTTP, ((g.host, g.http_port, HEALTHY, "gateways") for g in gateways)))
    snap.add(ENDPOINT, GATEWAYS_GRPC, _assignment(
        GATEWAYS_GRPC, ((g.host, g.grpc_port, HEALTHY, "gateways") for g in gateways)))
    return snap


def _previous_hosts() -> Message:
    from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2

    return previous_hosts_pb2.PreviousHostsPredicate()


def _gateway_cluster(name: str, grpc: bool) -> cluster_pb2.Cluster:
    cluster = _eds_cluster(name)
    cluster.connect_timeout.CopyFrom(duration_pb2.Duration(nanos=500_000_000))
    check = health_check_pb2.HealthCheck(
        timeout=duration_pb2.Duration(seconds=1), interval=duration_pb2.Duration(seconds=1),
        unhealthy_threshold=wrappers_pb2.UInt32Value(value=2),
        healthy_threshold=wrappers_pb2.UInt32Value(value=1),
        no_traffic_interval=duration_pb2.Duration(seconds=1))
    if grpc:
        check.grpc_health_check.CopyFrom(health_check_pb2.HealthCheck.GrpcHealthCheck())
        options = http_protocol_options_pb2.HttpProtocolOptions(
            explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions
            .ExplicitHttpConfig(http2_protocol_options=protocol_pb2.Http2ProtocolOptions()))
    else:
        check.http_health_check.CopyFrom(health_check_pb2.HealthCheck.HttpHealthCheck(
            path="/health"))
        # one request per upstream connection: a killed gateway's sockets linger for a few
        # ms while the kernel tears it down, and a request written on a kept-alive one then
        # is lost and cannot be retried; a new connection waits in the launcher's backlog
        options = http_protocol_options_pb2.HttpProtocolOptions(
            common_http_protocol_options=protocol_pb2.HttpProtocolOptions(
                max_requests_per_connection=wrappers_pb2.UInt32Value(value=1)),
            explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions
            .ExplicitHttpConfig(http_protocol_options=protocol_pb2.Http1ProtocolOptions()))
    cluster.typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Pack(options)
    cluster.health_checks.append(check)
    # a gateway whose connections fail is taken out for a while; its own 5xx answers never
    # eject it (a model that raises answers 5xx from every gateway alike)
    cluster.outlier_detection.CopyFrom(outlier_detection_pb2.OutlierDetection(
        split_external_local_origin_errors=True,
        consecutive_local_origin_failure=wrappers_pb2.UInt32Value(value=1),
        enforcing_consecutive_local_origin_failure=wrappers_pb2.UInt32Value(value=100),
        enforcing_consecutive_5xx=wrappers_pb2.UInt32Value(value=0),
        enforcing_consecutive_gateway_failure=wrappers_pb2.UInt32Value(value=0),
        enforcing_success_rate=wrappers_pb2.UInt32Value(value=0),
        enforcing_local_origin_success_rate=wrappers_pb2.UInt32Value(value=0),
        interval=duration_pb2.Duration(seconds=1),
        base_ejection_time=duration_pb2.Duration(seconds=2),
        max_ejection_percent=wrappers_pb2.UInt32Value(value=50)))
    return cluster


# ---------------------------------------------------------------------- operator filters

def load_extra_filters(path: Path) -> list[hcm.HttpFilter]:
    """Extra HTTP filters for the proxyless listeners, from ``<home>/xds-filters.json``: a
    JSON list of Envoy HttpFilter objects (e.g. a fault-injection filter to try clients'
    retries). Re-read on each poll. A filter some client does not support is NACKed by it:
    reported in events and ``modelport xds status``, and its last good config stays."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    try:
        entries = json.loads(text)
        if not isinstance(entries, list):
            raise ValueError("the file must hold a JSON list of HttpFilter objects")
        return [json_format.ParseDict(e, hcm.HttpFilter()) for e in entries]
    except (ValueError, json_format.ParseError) as exc:
        log.error("%s ignored: %s (fix: a JSON list of envoy HttpFilter objects, each with "
                  "name and typed_config)", path, exc)
        return []


# ---------------------------------------------------------------------- validation

class InvalidSnapshot(ValueError):
    """A snapshot that would not make sense to any client; it is not sent."""


def check(snap: Snapshot) -> None:
    clusters = snap.of(CLUSTER)
    for name, cluster in clusters.items():
        if not name or cluster.name != name:
            raise InvalidSnapshot(f"cluster {name!r} is named {cluster.name!r}")
        if cluster.type == cluster_pb2.Cluster.EDS and name not in snap.of(ENDPOINT):
            raise InvalidSnapshot(f"EDS cluster {name!r} has no ClusterLoadAssignment")
    for name, cla in snap.of(ENDPOINT).items():
        for locality in cla.endpoints:
            for lb in locality.lb_endpoints:
                port = lb.endpoint.address.socket_address.port_value
                if not 0 < port < 65536:
                    raise InvalidSnapshot(f"endpoint of {name!r} has port {port}")
    for name, config in snap.of(ROUTE).items():
        for vhost in config.virtual_hosts:
            for route in vhost.routes:
                if not route.HasField("route"):
                    continue
                action = route.route
                if action.HasField("weighted_clusters"):
                    wc = action.weighted_clusters.clusters
                    if not wc or sum(c.weight.value for c in wc) <= 0:
                        raise InvalidSnapshot(f"route {name!r}/{route.name}: weights sum to 0")
                    names = [c.name for c in wc]
                else:
                    names = [action.cluster]
                missing = [n for n in names if n not in clusters]
                if missing:
                    raise InvalidSnapshot(f"route {name!r}/{route.name} names unknown "
                                          f"cluster(s) {', '.join(missing)}")
    for name, listener in snap.of(LISTENER).items():
        if listener.name != name:
            raise InvalidSnapshot(f"listener {name!r} is named {listener.name!r}")
