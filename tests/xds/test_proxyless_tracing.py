"""A proxyless call is traced as a gateway call is: the direct port continues the client's
traceparent, and the runtime's and the replica's spans hang off it in one trace, exported
over OTLP/gRPC to a real receiver; no gateway span, since no gateway saw the call."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

import modelport
from tests.conftest import ROOT, RunningPlatform, start_platform
from tests.observability.otlp import OtlpReceiver, Span
from tests.observability.support import traceparent
from tests.xds.test_proxyless import TAGGED, modelport_cli

CALL = """
import sys, grpc
from modelport.inference import grpc_predict_v2_pb2 as pb, grpc_predict_v2_pb2_grpc as pbg
stub = pbg.GRPCInferenceServiceStub(grpc.insecure_channel("xds:///traced"))
x = pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 1],
                                          contents=pb.InferTensorContents(fp32_contents=[1]))
reply = stub.ModelInfer(pb.ModelInferRequest(model_name="traced", inputs=[x]), timeout=30,
                        metadata=[("traceparent", sys.argv[1])])
print(reply.model_version)
"""


@pytest.fixture(scope="module")
def traced(receiver: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[RunningPlatform]:
    plat = start_platform(tmp_path_factory.mktemp("home"), "--xds-port", "0", env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"})
    try:
        with modelport.Client(plat.url, home=plat.home) as c:
            c.create(str(TAGGED), name="traced", timeout=300)
        yield plat
    finally:
        plat.stop()


def test_a_proxyless_call_is_one_trace_from_the_clients_span(
        traced: RunningPlatform, receiver: OtlpReceiver) -> None:
    header, trace_id, parent_id = traceparent()
    boot = modelport_cli(traced, "xds", "bootstrap").stdout
    done = subprocess.run([sys.executable, "-c", CALL, header], capture_output=True,
                          text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "GRPC_XDS_BOOTSTRAP_CONFIG": boot})
    assert done.returncode == 0 and done.stdout.strip() == "1", done.stderr[-2000:]

    def complete(spans: list[Span]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        return {"modelport-runtime", "modelport-replica"} <= {s.service for s in mine}

    receiver.wait_for(complete)
    spans = receiver.trace(trace_id)
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if s.parent_id not in by_id]
    assert len(roots) == 1 and roots[0].parent_id == parent_id, [
        (s.service, s.name, s.parent_id) for s in roots]
    assert roots[0].service == "modelport-runtime"
    assert "modelport-gateway" not in {s.service for s in spans}
    names = {s.name for s in spans}
    assert {"auth", "worker.predict"} <= names, names
