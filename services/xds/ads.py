"""The Aggregated Discovery Service: state-of-the-world xDS over one gRPC stream per client.

Protocol, as Envoy and grpc speak it (envoyproxy.io "xDS REST and gRPC protocol"):

- A client sends a DiscoveryRequest per resource type it wants (LDS, RDS, CDS, EDS) with
  the names it subscribes to; for LDS and CDS an empty list is a wildcard (Envoy), and
  every response for those two types holds the whole set asked for, so a name missing
  from it is deleted. RDS and EDS are named subscriptions.
- Each response carries the type's ``version_info`` (a counter per type, raised when that
  type's resources change) and a fresh ``nonce``. The client answers each with the nonce:
  with the new version (ACK) or with its last good version and an ``error_detail`` (NACK).
  A request whose nonce is not the latest one sent for its type is stale and only
  changes nothing.
- A NACKed update is logged with the client's ``error_detail``, recorded as a Warning
  event of the services it names (once per client, type and version) and shown by
  ``modelport xds status``; the server does not send it again, and the client keeps the
  last config it accepted. The next change is sent as usual.

Clients are of two kinds, told apart by the node's ``user_agent_name``: Envoy (``envoy``)
gets the edge resources, anything else (grpc's ``gRPC Python``, ``grpc-java``, ...) the
proxyless ones (``resources.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from envoy.admin.v3 import config_dump_shared_pb2 as dump
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from envoy.service.status.v3 import csds_pb2, csds_pb2_grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message

from services.xds.resources import FULL_SET, SHORT, TYPES, Snapshot

log = logging.getLogger(__name__)

ENVOY, GRPC = "envoy", "grpc"
CONTROL_PLANE = "modelport-xds"


def client_kind(node: base_pb2.Node) -> str:
    return ENVOY if node.user_agent_name == "envoy" else GRPC


@dataclass
class Nack:
    version: str
    message: str
    at: float


@dataclass
class Subscription:
    """One resource type on one stream."""
    names: set[str] | None = None  # None: wildcard (every resource of the type)
    subscribed: bool = False
    sent_version: str = ""
    sent_nonce: str = ""
    sent_names: tuple[str, ...] = ()
    #: (type version, names) of the last response: the same is not sent twice
    sent_key: tuple[int, frozenset[str] | None] | None = None
    acked_version: str = ""
    acked_at: float = 0.0
    nack: Nack | None = None


@dataclass(eq=False)  # one per stream, kept in a set by identity
class ClientStream:
    peer: str
    node: base_pb2.Node = field(default_factory=base_pb2.Node)
    kind: str = GRPC
    subs: dict[str, Subscription] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    connected_at: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        return f"{self.node.id or self.peer} ({self.node.user_agent_name or 'unknown agent'})"


#: called with (client, type_url, rejected version, error message, resource names)
NackHook = Callable[[ClientStream, str, str, str, tuple[str, ...]], Awaitable[None]]


class AggregatedDiscovery(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, on_nack: NackHook | None = None) -> None:
        self.snapshots: dict[str, Snapshot] = {ENVOY: Snapshot(), GRPC: Snapshot()}
        #: per (client kind, type): raised when that type's resources change
        self.versions: dict[tuple[str, str], int] = {}
        self._serialized: dict[tuple[str, str], dict[str, bytes]] = {}
        self.streams: set[ClientStream] = set()
        self.on_nack = on_nack
        self._nonces = itertools.count(1)
        self.ready = asyncio.Event()  # a first snapshot is in: clients are answered

    # ------------------------------------------------------------------ snapshots

    def update(self, kind: str, snap: Snapshot) -> list[str]:
        """Install a (checked) snapshot for one client kind; returns the types that changed
        and wakes every stream of that kind."""
        changed = []
        for type_url in TYPES:
            wire = {n: m.SerializeToString(deterministic=True)
                    for n, m in snap.of(type_url).items()}
            key = (kind, type_url)
            if self._serialized.get(key) != wire or key not in self.versions:
                self._serialized[key] = wire
                self.versions[key] = self.versions.get(key, 0) + 1
                changed.append(type_url)
        self.snapshots[kind] = snap
        self.ready.set()
        if changed:
            for stream in self.streams:
                if stream.kind == kind:
                    stream.wake.set()
        return changed

    # ------------------------------------------------------------------ the stream

    async def StreamAggregatedResources(
            self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
            context: grpc.aio.ServicerContext) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        stream = ClientStream(peer=context.peer() or "")
        self.streams.add(stream)
        reader = asyncio.create_task(self._read(request_iterator, stream))
        reader.add_done_callback(lambda _: stream.wake.set())
        try:
            await self.ready.wait()
            while True:
                await stream.wake.wait()
                stream.wake.clear()
                if reader.done():
                    break
                for response in self._due(stream):
                    yield response
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
            self.streams.discard(stream)
            log.info("xDS client %s disconnected", stream.label)

    async def _read(self, requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
                    stream: ClientStream) -> None:
        async for req in requests:
            if req.HasField("node") and not stream.node.id and not stream.node.user_agent_name:
                stream.node.CopyFrom(req.node)
                stream.kind = client_kind(req.node)
                log.info("xDS client %s connected from %s", stream.label, stream.peer)
            if req.type_url not in SHORT:
                log.info("xDS client %s asked for unknown type %s", stream.label, req.type_url)
                continue
            sub = stream.subs.setdefault(req.type_url, Subscription())
            if req.response_nonce:
                if req.response_nonce != sub.sent_nonce:
                    continue  # stale: an answer to a response that has been superseded
                if req.HasField("error_detail"):
                    await self._nacked(stream, req, sub)
                else:
                    sub.acked_version, sub.acked_at = req.version_info, time.time()
            names = set(req.resource_names) - {"*"} if req.resource_names else set()
            wildcard = req.type_url in FULL_SET and (not req.resource_names
                                                     or "*" in req.resource_names)
            wanted = None if wildcard else names
            if not sub.subscribed or wanted != sub.names:
                sub.subscribed, sub.names = True, wanted
                stream.wake.set()

    async def _nacked(self, stream: ClientStream, req: discovery_pb2.DiscoveryRequest,
                      sub: Subscription) -> None:
        message = req.error_detail.message
        first = sub.nack is None or sub.nack.version != sub.sent_version
        sub.nack = Nack(sub.sent_version, message, time.time())
        log.warning("xDS client %s rejected %s version %s (keeps version %s): %s",
                    stream.label, SHORT[req.type_url], sub.sent_version,
                    req.version_info or "none", message)
        if first and self.on_nack is not None:
            try:
                await self.on_nack(stream, req.type_url, sub.sent_version, message,
                                   sub.sent_names)
            except Exception:  # noqa: BLE001 - the NACK is logged and in the status anyway
                log.exception("recording an xDS NACK failed")

    def _due(self, stream: ClientStream) -> list[discovery_pb2.DiscoveryResponse]:
        """The responses this stream is owed now, in TYPES order."""
        out = []
        snap = self.snapshots[stream.kind]
        for type_url in TYPES:
            sub = stream.subs.get(type_url)
            if sub is None or not sub.subscribed:
                continue
            version = self.versions.get((stream.kind, type_url), 0)
            names = None if sub.names is None else frozenset(sub.names)
            if sub.sent_key == (version, names):
                continue
            available = snap.of(type_url)
            chosen = sorted(available) if names is None else sorted(n for n in names
                                                                    if n in available)
            if not chosen and type_url not in FULL_SET and not sub.sent_names:
                continue  # nothing of what it asked for exists (yet): say nothing
            out.append(self._response(type_url, str(version), [available[n] for n in chosen]))
            sub.sent_key, sub.sent_version = (version, names), str(version)
            sub.sent_nonce, sub.sent_names = out[-1].nonce, tuple(chosen)
        return out

    def _response(self, type_url: str, version: str, messages: list[Message]
                  ) -> discovery_pb2.DiscoveryResponse:
        resources = []
        for m in messages:
            packed = any_pb2.Any()
            packed.Pack(m)
            resources.append(packed)
        return discovery_pb2.DiscoveryResponse(
            version_info=version, type_url=type_url, resources=resources,
            nonce=str(next(self._nonces)),
            control_plane=base_pb2.ControlPlane(identifier=CONTROL_PLANE))


class ClientStatus(csds_pb2_grpc.ClientStatusDiscoveryServiceServicer):
    """CSDS (``envoy.service.status.v3``): what each connected client was sent, what it
    ACKed and its last NACK; ``modelport xds status`` reads it."""

    def __init__(self, ads: AggregatedDiscovery) -> None:
        self.ads = ads

    async def FetchClientStatus(self, request: csds_pb2.ClientStatusRequest,
                                context: grpc.aio.ServicerContext
                                ) -> csds_pb2.ClientStatusResponse:
        return csds_pb2.ClientStatusResponse(config=[
            self._config(s) for s in sorted(self.ads.streams, key=lambda s: s.connected_at)])

    @staticmethod
    def _config(stream: ClientStream) -> csds_pb2.ClientConfig:
        configs = []
        for type_url in TYPES:
            sub = stream.subs.get(type_url)
            if sub is None:
                continue
            nacked = sub.nack is not None and sub.nack.version == sub.sent_version
            for name in sub.sent_names or ("",):
                entry = csds_pb2.ClientConfig.GenericXdsConfig(
                    type_url=type_url, name=name, version_info=sub.acked_version,
                    client_status=dump.NACKED if nacked else (
                        dump.ACKED if sub.acked_version == sub.sent_version
                        and sub.sent_version else dump.REQUESTED))
                if sub.acked_at:
                    entry.last_updated.CopyFrom(_timestamp(sub.acked_at))
                if sub.nack is not None:
                    entry.error_state.CopyFrom(dump.UpdateFailureState(
                        details=sub.nack.message, version_info=sub.nack.version,
                        last_update_attempt=_timestamp(sub.nack.at)))
                configs.append(entry)
        return csds_pb2.ClientConfig(node=stream.node, generic_xds_configs=configs)


def _timestamp(at: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(at * 1e9))
    return ts
