"""A proxyless gRPC client of ``xds:///SERVICE`` that lives as long as a test: it reads
commands on stdin and answers each with one JSON line, so a test can see a running
client follow the platform's changes (grpc's xDS client is per process, read from
GRPC_XDS_BOOTSTRAP_CONFIG once).

Commands: ``call N [PIN] [KEY]`` makes N ModelInfer calls (PIN: the x-model-version
header, ``-`` for none; KEY: a bearer token); ``loop PATH`` makes calls back to back until
the file PATH exists (a load while the test changes the platform). Each answers
``{"versions": {"1": n, ...}, "tags": {"TAG": n}, "errors": {"CODE: details": n}}``
(TAG: the first output's text, the answering worker's pid for tests/xds/packages/tagged);
``quit`` ends it.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import grpc

from modelport.inference import grpc_predict_v2_pb2 as pb
from modelport.inference import grpc_predict_v2_pb2_grpc as pb_grpc


def main(service: str) -> None:
    channel = grpc.insecure_channel(f"xds:///{service}")
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    request = pb.ModelInferRequest(model_name=service, inputs=[
        pb.ModelInferRequest.InferInputTensor(
            name="x", datatype="FP32", shape=[1, 2],
            contents=pb.InferTensorContents(fp32_contents=[1.0, 2.0]))])
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        stop = Path(words[1]) if words[0] == "loop" else None
        n = 0 if stop is not None else int(words[1])
        pin = words[2] if len(words) > 2 and words[2] != "-" else ""
        key = words[3] if len(words) > 3 else ""
        metadata = ([("x-model-version", pin)] if pin else []) + (
            [("authorization", f"Bearer {key}")] if key else [])
        versions: Counter[str] = Counter()
        tags: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        done = 0
        while (done < n) if stop is None else not stop.exists():
            done += 1
            try:
                reply = stub.ModelInfer(request, timeout=10, metadata=metadata)
                versions[reply.model_version] += 1
                if reply.raw_output_contents:  # a BYTES tensor: 4-byte length, then bytes
                    tags[reply.raw_output_contents[0][4:].decode(errors="replace")] += 1
            except grpc.RpcError as exc:
                errors[f"{exc.code().name}: {exc.details()}"[:300]] += 1
        print(json.dumps({"versions": versions, "tags": tags, "errors": errors}),
              flush=True)
    channel.close()


if __name__ == "__main__":
    main(sys.argv[1])
