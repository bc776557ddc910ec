"""The pieces the gateway's cheaper infer path is built from, on their own:
``SingleFlight`` (concurrent cache misses share one registry lookup), ``Router``'s
one-version and one-agent shortcuts, and ``GatewayStats``' cached series."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.routing import Endpoint, Router, RouteTable, VersionRoute
from services.gateway.single_flight import SingleFlight
from services.gateway.stats import GatewayStats


def test_concurrent_misses_share_one_lookup_and_its_error() -> None:
    async def scenario() -> None:
        flights = SingleFlight[int]()
        calls = 0
        release = asyncio.Event()

        async def lookup() -> int:
            nonlocal calls
            calls += 1
            await release.wait()
            return calls

        waiters = [asyncio.ensure_future(flights.run("k", lookup)) for _ in range(8)]
        await asyncio.sleep(0)
        release.set()
        assert await asyncio.gather(*waiters) == [1] * 8 and calls == 1
        assert await flights.run("k", lookup) == 2  # landed: the next miss asks again

        async def failing() -> int:
            await asyncio.sleep(0)
            raise ValueError("registry down")

        results = await asyncio.gather(*(flights.run("e", failing) for _ in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(r, ValueError) for r in results)

    asyncio.run(scenario())


def test_a_cancelled_caller_leaves_the_lookup_to_the_others() -> None:
    async def scenario() -> None:
        flights = SingleFlight[str]()
        release = asyncio.Event()

        async def lookup() -> str:
            await release.wait()
            return "route"

        first = asyncio.ensure_future(flights.run("svc", lookup))
        second = asyncio.ensure_future(flights.run("svc", lookup))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        release.set()
        assert await second == "route"
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(scenario())


def test_forget_makes_later_callers_ask_afresh() -> None:
    async def scenario() -> None:
        flights = SingleFlight[int]()
        answers = iter([1, 2, 3])
        release = asyncio.Event()

        async def lookup() -> int:
            value = next(answers)
            await release.wait()
            return value

        old = asyncio.ensure_future(flights.run(("svc", 0), lookup))
        await asyncio.sleep(0)
        flights.forget(lambda key: key[0] == "svc")  # e.g. the service was just updated
        new = asyncio.ensure_future(flights.run(("svc", 0), lookup))
        await asyncio.sleep(0)
        release.set()
        assert (await old, await new) == (1, 2)

    asyncio.run(scenario())


def table(*versions: VersionRoute) -> RouteTable:
    return RouteTable("svc", {v.version: v for v in versions}, expires=1e18)


def test_one_live_version_then_a_split_still_interleaves_exactly() -> None:
    up = Endpoint("h1:1", "a", ready=1, replicas=1)
    router = Router()
    single = table(VersionRoute(1, 100, {}, 60.0, [up]))
    assert {router.pick_version(single).version for _ in range(5)} == {1}
    split = table(VersionRoute(1, 90, {}, 60.0, [up]), VersionRoute(2, 10, {}, 60.0, [up]))
    picks = [router.pick_version(split).version for _ in range(100)]
    assert picks.count(2) == 10 and all(picks[i:i + 10].count(2) == 1
                                        for i in range(0, 100, 10))
    assert router.pick_version(single).version == 1  # back to one: no stale weights
    picks = [router.pick_version(split).version for _ in range(100)]
    assert picks.count(2) == 10


def test_one_agent_is_chosen_failing_or_not_and_none_without_replicas() -> None:
    router = Router()
    only = Endpoint("h1:1", "a", ready=0, replicas=1)
    router.mark_down("h1:1")
    assert router.pick_endpoint(VersionRoute(1, 100, {}, 60.0, [only])) == only
    empty = Endpoint("h2:1", "b", ready=0, replicas=0)
    assert router.pick_endpoint(VersionRoute(1, 100, {}, 60.0, [empty])) is None
    router.begin_call("h1:1")
    router.end_call("h1:1")
    assert "h1:1" not in router.outstanding


def test_stats_series_count_by_class_and_window() -> None:
    stats = GatewayStats()
    for status in (200, 200, 404, 503):
        stats.observe("svc", "1", status, 0.01)
    stats.observe("", "", 404, 0.01)  # an unknown service: counted, no window
    counts = {(s.labels["service"], s.labels["code_class"]): s.value
              for m in stats.requests.collect() for s in m.samples
              if s.name.endswith("_total")}
    assert counts == {("svc", "2xx"): 2, ("svc", "4xx"): 1, ("svc", "5xx"): 1, ("", "4xx"): 1}
    total = stats.service_stats("svc")["total"]
    assert (total["calls"], total["failed"]) == (4, 2)
    assert set(stats.windows) == {"svc"}


def test_json_inputs_make_the_same_frame_as_the_general_encoder() -> None:
    """The gateway builds a JSON request's frame itself; the runtime must get the very
    bytes ``predict_frames.predict`` would have sent (the wire format is shared)."""
    from modelport.v1 import inference_pb2 as ip
    from services.gateway.runtime_link import json_predict_frame
    from services.wire import predict_frames as pf

    inputs = [ip.InputValue(name="x", json=b"1"), ip.InputValue(name="y", json=b'{"a": [1]}'),
              ip.InputValue(name="unset")]
    for tensor_outputs, trace in ((False, None), (True, {"traceparent": "00-ab-cd-01"})):
        direct = json_predict_frame("r1", "svc", 3, inputs, 60.0, tensor_outputs, trace)
        general = pf.predict("r1", "svc", 3, pf.to_values(inputs), 60.0, tensor_outputs, trace)
        assert direct is not None
        assert b"".join(map(bytes, direct)) == b"".join(map(bytes, general))
    for other in ([ip.InputValue(name="t", text="hi")], [ip.InputValue(name="b", data=b"\0")],
                  [ip.InputValue(name="x", json=b"1"), ip.InputValue(name="x", json=b"2")]):
        assert json_predict_frame("r1", "svc", 3, other, 60.0) is None
