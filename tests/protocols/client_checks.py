"""Calls a running gateway with a client library nobody here wrote; prints what it got as JSON.

    python tests/protocols/client_checks.py CLIENT HTTP_URL GRPC_ADDRESS

CLIENT is ``triton-http``, ``triton-grpc``, ``kserve-rest`` or ``kserve-grpc``. Each runs
in its own process: tritonclient and kserve both register protobuf package
``inference``, which one process cannot hold twice. Expects the services ``oip-sum``
(tests/protocols/packages/oip_sum), ``oip-mixed`` and ``iris`` (examples/predictor-iris).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np

X = np.arange(6, dtype=np.float32).reshape(2, 3) + 0.5
IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


def _text(array: np.ndarray) -> list[str]:
    return [x.decode() if isinstance(x, bytes) else str(x) for x in array.reshape(-1)]


def triton(kind: str, http_url: str, grpc_address: str) -> dict[str, Any]:
    if kind == "http":
        import tritonclient.http as tc
        from tritonclient.utils import InferenceServerException

        client = tc.InferenceServerClient(http_url.removeprefix("http://"))
    else:
        import tritonclient.grpc as tc  # type: ignore[no-redef]
        from tritonclient.utils import InferenceServerException

        client = tc.InferenceServerClient(grpc_address)
    out: dict[str, Any] = {"live": client.is_server_live(), "ready": client.is_server_ready(),
                           "model_ready": client.is_model_ready("oip-sum")}
    meta = client.get_model_metadata("oip-sum", as_json=True) if kind == "grpc" else (
        client.get_model_metadata("oip-sum"))
    out["inputs"] = [(i["name"], i["datatype"], [int(d) for d in i["shape"]])
                     for i in meta["inputs"]]
    out["outputs"] = [o["name"] for o in meta["outputs"]]
    out["server"] = (client.get_server_metadata(as_json=True) if kind == "grpc"
                     else client.get_server_metadata())["name"]
    for binary in (True, False):
        x = tc.InferInput("x", list(X.shape), "FP32")
        if kind == "http":
            x.set_data_from_numpy(X, binary_data=binary)
            wanted = [tc.InferRequestedOutput("doubled", binary_data=binary),
                      tc.InferRequestedOutput("label", binary_data=binary)]
        else:
            x.set_data_from_numpy(X)
            wanted = [tc.InferRequestedOutput("doubled"), tc.InferRequestedOutput("label")]
        res = client.infer("oip-sum", [x], outputs=wanted, request_id="req-7")
        out[f"binary={binary}"] = {"doubled": res.as_numpy("doubled").tolist(),
                                   "dtype": str(res.as_numpy("doubled").dtype),
                                   "label": _text(res.as_numpy("label")),
                                   "row_sum": res.as_numpy("row_sum") is not None,
                                   "id": res.get_response(as_json=True)["id"]
                                   if kind == "grpc" else res.get_response()["id"]}
    x = tc.InferInput("x", list(X.shape), "FP32")
    x.set_data_from_numpy(X)
    res = client.infer("oip-sum", [x])  # every output
    out["all_outputs"] = {"row_sum": res.as_numpy("row_sum").tolist(),
                          "label": _text(res.as_numpy("label"))}
    features = tc.InferInput("features", list(IRIS.shape), "FP32")
    features.set_data_from_numpy(IRIS)
    out["iris"] = _text(client.infer("iris", [features]).as_numpy("label"))
    mixed = []
    for name, datatype, value in (("prefix", "BYTES", np.array([b"ab"], dtype=object)),
                                  ("n", "INT64", np.array([3], dtype=np.int64)),
                                  ("blob", "BYTES", np.array([b"\x00\xff"], dtype=object)),
                                  ("values", "FP64", np.array([[1.5, 2.5]]))):
        t = tc.InferInput(name, list(value.shape), datatype)
        t.set_data_from_numpy(value)
        mixed.append(t)
    res = client.infer("oip-mixed", mixed)
    out["mixed"] = {"echo": _text(res.as_numpy("echo")), "size": res.as_numpy("size").tolist(),
                    "first": _text(res.as_numpy("first")),
                    "values": res.as_numpy("values").tolist()}
    bad = tc.InferInput("nope", [1], "FP32")
    bad.set_data_from_numpy(np.zeros(1, dtype=np.float32))
    try:
        client.infer("oip-sum", [bad])
        out["unknown_input"] = None
    except InferenceServerException as exc:
        out["unknown_input"] = str(exc)
    try:  # tritonclient.http answers False for any non-200; grpc raises
        out["missing_model"] = client.is_model_ready("no-such-model")
    except InferenceServerException as exc:
        out["missing_model"] = str(exc)
    return out


async def kserve(kind: str, http_url: str, grpc_address: str) -> dict[str, Any]:
    from kserve import InferInput, InferRequest
    from kserve.protocol.infer_type import RequestedOutput

    def request(binary: bool) -> InferRequest:
        x = InferInput("x", list(X.shape), "FP32")
        x.set_data_from_numpy(X, binary_data=binary)
        return InferRequest(model_name="oip-sum", infer_inputs=[x], request_id="req-9",
                            request_outputs=[RequestedOutput("doubled"),
                                             RequestedOutput("label")])

    out: dict[str, Any] = {}
    if kind == "rest":
        from kserve import InferenceRESTClient, RESTConfig

        client = InferenceRESTClient(RESTConfig(protocol="v2"))
        out["live"] = await client.is_server_live(http_url)
        out["ready"] = await client.is_server_ready(http_url)
        out["model_ready"] = await client.is_model_ready(http_url, "oip-sum")
        for binary in (True, False):
            res = await client.infer(http_url, request(binary), model_name="oip-sum")
            out[f"binary={binary}"] = _kserve_outputs(res)
        v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
        out["v1_ready"] = await v1.is_model_ready(http_url, "iris")
        res = await v1.infer(http_url, {"instances": IRIS.tolist()}, model_name="iris")
        out["v1_iris"] = [p["label"] for p in res["predictions"]]
        await client.close()
        await v1.close()
    else:
        from kserve import InferenceGRPCClient

        client = InferenceGRPCClient(grpc_address)
        out["live"] = await client.is_server_live()
        out["ready"] = await client.is_server_ready()
        out["model_ready"] = await client.is_model_ready("oip-sum")
        res = await client.infer(request(True))
        out["binary=True"] = _kserve_outputs(res)
        await client.close()
    return out


def _kserve_outputs(res: Any) -> dict[str, Any]:
    by_name = {o.name: o for o in res.outputs}
    return {"doubled": by_name["doubled"].as_numpy().tolist(),
            "label": _text(by_name["label"].as_numpy()), "id": res.id,
            "names": sorted(by_name)}


def main() -> None:
    client, http_url, grpc_address = sys.argv[1:4]
    library, kind = client.split("-")
    if library == "triton":
        result = triton(kind, http_url, grpc_address)
    else:
        result = asyncio.run(kserve(kind, http_url, grpc_address))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
