"""protos/inference/grpc_predict_v2.proto is wire compatible with the definitions that
tritonclient and the kserve SDK were generated from: every message, field number, type
and RPC they share is the same.

Each definition is read in its own process: they all declare package ``inference``, and
one protobuf descriptor pool refuses the same symbol from two files.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DUMP = """
import importlib, json, sys
from google.protobuf import descriptor_pb2
fdp = descriptor_pb2.FileDescriptorProto()
importlib.import_module(sys.argv[1]).DESCRIPTOR.CopyToProto(fdp)
messages = {}
def walk(prefix, msgs):
    for m in msgs:
        messages[prefix + m.name] = sorted(
            [f.number, f.name, f.type, f.label, f.type_name.rsplit('.', 1)[-1]] for f in m.field)
        walk(prefix + m.name + '.', m.nested_type)
walk('', fdp.message_type)
services = {s.name: sorted([m.name, m.input_type, m.output_type, m.client_streaming,
                            m.server_streaming] for m in s.method) for s in fdp.service}
print(json.dumps({'package': fdp.package, 'messages': messages, 'services': services}))
"""

OURS = "modelport.inference.grpc_predict_v2_pb2"
#: Triton's repository RPCs take more fields than KServe's; we follow KServe's definition
TRITON_ONLY = {"RepositoryModelLoadRequest", "RepositoryModelLoadResponse",
               "RepositoryModelUnloadRequest", "RepositoryModelUnloadResponse"}


def describe(module: str) -> dict:
    out = subprocess.run([sys.executable, "-c", DUMP, module], capture_output=True,
                         text=True, check=True, timeout=60)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def ours() -> dict:
    return describe(OURS)


@pytest.mark.parametrize("module, skip", [
    ("kserve.protocol.grpc.grpc_predict_v2_pb2", set()),
    ("tritonclient.grpc.service_pb2", TRITON_ONLY),
])
def test_shared_messages_and_rpcs_are_identical(ours: dict, module: str, skip: set) -> None:
    theirs = describe(module)
    assert ours["package"] == theirs["package"] == "inference"
    shared = (set(ours["messages"]) & set(theirs["messages"])) - skip
    assert {"ModelInferRequest", "ModelInferResponse", "InferTensorContents",
            "ModelMetadataResponse.TensorMetadata", "InferParameter"} <= shared
    for name in sorted(shared):
        mine = {tuple(f) for f in ours["messages"][name]}
        their = {tuple(f) for f in theirs["messages"][name]}
        # we may carry more fields (InferParameter.double_param ...), never different ones
        assert their <= mine, f"{name}: {sorted(their - mine)} missing or different"
    rpcs = {r[0]: r for r in ours["services"]["GRPCInferenceService"]}
    for rpc in theirs["services"]["GRPCInferenceService"]:
        if rpc[0] in rpcs and not rpc[0].startswith("Repository"):
            assert rpcs[rpc[0]] == rpc
    assert {"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
            "ModelInfer"} <= set(rpcs)
