"""The ModelArts kind: ``model/config.json`` (``model_type``...) and ``customize_service.py``.

ModelArts images preinstall a ``model_service`` package whose base classes the user's
service subclasses. This module provides them, importable under the same names, so a
package runs unmodified:

================================================  ==========================================
``model_service.model_service``                   ``ModelService``, ``SingleNodeService``
``model_service.pytorch_model_service``           ``PTServingBaseService``
``model_service.tfserving_model_service``         ``TfServingBaseService`` (also under
(``tf_serving_model_service``, ``tferving_...``)  the spellings the manual uses)
``model_service.python_model_service``            ``XgSkServingBaseService`` (and the
                                                  ``XgSkIServingBaseService`` spelling)
``model_service.caffe_model_service``             ``CaffeBaseService``
``model_service.spark_model_service``             ``SparkServingBaseService``
``model_service.log`` and top-level ``log``       ``getLogger(name)``
================================================  ==========================================

The worker builds the service as ModelArts does, ``Service(model_name, model_path)``
(``Service(model_path)`` when its ``__init__`` takes one argument), and answers each
request with ``_postprocess(_inference(_preprocess(data)))``. ``model_path`` is the
model directory, except for PyTorch and the machine-learning engines (scikit-learn,
XGBoost, Spark), where it is the model file inside it, as the ModelArts manual says.

``data`` has the shapes of the manual (§4.1):

- multipart/form-data: ``{key: {filename: <file object>}}`` for each file (a BytesIO
  with ``.filename`` and ``.name``), ``{key: "text"}`` for each plain field;
- application/json: the parsed body (a dict); for ``XgSkServingBaseService`` and
  ``SparkServingBaseService`` the JSON text itself, which their examples ``json.loads``.

Stdlib only, Python >= 3.8.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import json
import logging
import os
import sys
import types
from typing import Any

from ..values import Value
from .base import ConfigError, RequestContext, to_result

SERVICE_MODULE = "customize_service"
#: model files a PyTorch service's model_path points at, by preference
PYTORCH_SUFFIXES = (".pth", ".pt", ".pkl", ".ckpt", ".bin")
#: model files a machine-learning service's model_path points at
ML_SUFFIXES = (".m", ".pkl", ".joblib", ".model", ".bst", ".ubj", ".sav", ".json")
_NOT_MODEL = (".py", ".pyc", ".txt", ".md", ".whl", ".cfg", ".toml", ".yaml", ".yml")


def detect(config: dict[str, Any]) -> bool:
    return ("model_type" in config or "model_algorithm" in config) and "predictor" not in config


# ---------------------------------------------------------------------- base classes


class ModelService:
    """What every ModelArts service is: a model name and path, and a three-step pipeline."""

    #: what ``model_path`` means for this base: "dir" (the model folder) or "file"
    model_path_kind = "dir"
    #: how a JSON body reaches ``_preprocess``: "dict" (parsed) or "text" (raw JSON)
    json_body = "dict"

    def __init__(self, model_name: str, model_path: str) -> None:
        self.model_name = model_name
        self.model_path = model_path

    def inference(self, data: Any) -> Any:
        return self._postprocess(self._inference(self._preprocess(data)))

    def _preprocess(self, data: Any) -> Any:
        return data

    def _inference(self, data: Any) -> Any:
        model = getattr(self, "model", None)
        if model is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no built-in inference for this engine here: "
                "override _inference(self, data), or set self.model in __init__")
        if isinstance(data, dict):
            return {k: model(v) for k, v in data.items()}
        return model(data)

    def _postprocess(self, data: Any) -> Any:
        return data


class SingleNodeService(ModelService):
    """MindSpore (and generic) services."""


class TfServingBaseService(SingleNodeService):
    """TensorFlow services; ``model_path`` is the SavedModel directory."""


class CaffeBaseService(SingleNodeService):
    """Caffe services; ``model_path`` is the model directory."""


class PTServingBaseService(SingleNodeService):
    """PyTorch services; ``model_path`` is the weights file (``.pth``/``.pt``)."""

    model_path_kind = "file"


class XgSkServingBaseService(ModelService):
    """XGBoost and scikit-learn services; ``model_path`` is the model file.

    The built-in ``_inference`` loads that file once (joblib when installed, else
    pickle) and calls its ``predict``; the manual's examples override it anyway.
    """

    model_path_kind = "file"
    json_body = "text"

    def _inference(self, data: Any) -> Any:
        model = getattr(self, "model", None)
        if model is None:
            model = self.model = _load_pickle(self.model_path)
        result = model.predict(data)
        return result.tolist() if hasattr(result, "tolist") else result


class SparkServingBaseService(XgSkServingBaseService):
    """Spark MLlib services (a SparkSession as ``self.spark`` when pyspark is installed)."""

    def __init__(self, model_name: str, model_path: str) -> None:
        super().__init__(model_name, model_path)
        try:  # the user's environment may have pyspark; the shim itself never needs it
            sql = importlib.import_module("pyspark.sql")
        except ImportError:
            self.spark = None
        else:
            self.spark = sql.SparkSession.builder.getOrCreate()


XgSkIServingBaseService = XgSkServingBaseService  # the manual spells it both ways


def _load_pickle(path: str) -> Any:
    try:  # joblib when the user's environment has it (scikit-learn brings it)
        joblib = importlib.import_module("joblib")
    except ImportError:
        import pickle

        with open(path, "rb") as f:
            return pickle.load(f)
    return joblib.load(path)


def getLogger(name: str | None = None) -> logging.Logger:  # noqa: N802 - ModelArts' name
    """``model_service.log.getLogger``: INFO and up to stderr (the replica log)."""
    logger = logging.getLogger(name)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logger.setLevel(logging.INFO)
    return logger


#: module name -> the names it exports (all of them from this module)
MODULES = {
    "model_service.model_service": ("ModelService", "SingleNodeService"),
    "model_service.pytorch_model_service": ("PTServingBaseService",),
    "model_service.tfserving_model_service": ("TfServingBaseService",),
    "model_service.tf_serving_model_service": ("TfServingBaseService",),
    "model_service.tferving_model_service": ("TfServingBaseService",),
    "model_service.python_model_service": ("XgSkServingBaseService",
                                           "XgSkIServingBaseService"),
    "model_service.caffe_model_service": ("CaffeBaseService",),
    "model_service.spark_model_service": ("SparkServingBaseService",),
    "model_service.log": ("getLogger",),
}


def install_modules(model_dir: str) -> None:
    """Make ``model_service.*`` (and ``log``, unless the package has its own) importable."""
    if os.path.isdir(os.path.join(model_dir, "model_service")):
        return  # the package ships its own: it wins, as it would on ModelArts
    here = sys.modules[__name__]
    root = types.ModuleType("model_service")
    root.__path__ = []  # a package, so `import model_service.x` looks in sys.modules
    sys.modules["model_service"] = root
    for qualified, names in MODULES.items():
        module = types.ModuleType(qualified)
        for name in names:
            setattr(module, name, getattr(here, name))
        sys.modules[qualified] = module
        setattr(root, qualified.split(".", 1)[1], module)
    if not os.path.exists(os.path.join(model_dir, "log.py")) and "log" not in sys.modules:
        sys.modules["log"] = sys.modules["model_service.log"]


# ---------------------------------------------------------------------- the adapter


class Adapter:
    kind = "modelarts"

    def __init__(self, root: str, config: dict[str, Any]) -> None:
        self.root = root  # the model/ directory: config.json and customize_service.py
        self.config = config
        self.streaming = False
        self.service: Any = None

    def setup(self) -> None:
        if not os.path.isfile(os.path.join(self.root, SERVICE_MODULE + ".py")):
            raise ConfigError(f"no {SERVICE_MODULE}.py next to config.json in {self.root}")
        install_modules(self.root)
        if self.root not in sys.path:
            sys.path.insert(0, self.root)
        module = importlib.import_module(SERVICE_MODULE)
        cls = service_class(module)
        path = model_path(self.root, cls.model_path_kind)
        name = str(self.config.get("model_algorithm") or self.config.get("name") or "model")
        self.service = cls(path) if _takes_one_argument(cls) else cls(name, path)

    def close(self) -> None:
        closer = getattr(self.service, "close", None)
        if callable(closer):
            closer()

    def predict(self, inputs: dict[str, Value], ctx: RequestContext) -> Any:
        service = self.service
        phase = getattr(ctx, "phase", None) or (lambda name: contextlib.nullcontext())
        with phase("preprocess"):
            data = service._preprocess(request_data(inputs, service.json_body))
        with phase("predict"):
            data = service._inference(data)
        with phase("postprocess"):
            return to_result(service._postprocess(data))


def service_class(module: Any) -> Any:
    """The service class customize_service.py defines (the most derived, if several)."""
    mine = [obj for obj in vars(module).values()
            if inspect.isclass(obj) and issubclass(obj, ModelService)
            and obj.__module__ == module.__name__]
    if not mine:
        raise ConfigError(f"{SERVICE_MODULE}.py defines no class based on a ModelArts service "
                          "class (e.g. `class MyService(PTServingBaseService)`)")
    leaves = [c for c in mine if not any(o is not c and issubclass(o, c) for o in mine)]
    return leaves[-1]


def model_path(root: str, kind: str) -> str:
    """The model directory, or (kind "file") the model file inside it."""
    if kind != "file":
        return root
    files = sorted(f for f in os.listdir(root)
                   if os.path.isfile(os.path.join(root, f)) and f != "config.json"
                   and not f.endswith(_NOT_MODEL))
    for suffixes in (PYTORCH_SUFFIXES, ML_SUFFIXES):
        for f in files:
            if f.endswith(suffixes):
                return os.path.join(root, f)
    # no recognisable weights: a path inside model/, so dirname(model_path) still works
    return os.path.join(root, files[0] if files else "model")


def _takes_one_argument(cls: Any) -> bool:
    """``__init__(self, model_path)``: the machine-learning signature in the manual."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return False
    return len(positional) == 1


class UploadedFile(io.BytesIO):
    """A multipart file as ModelArts code sees it: a readable file object with a name."""

    def __init__(self, data: bytes, filename: str) -> None:
        super().__init__(data)
        self.filename = filename
        self.name = filename


def request_data(inputs: dict[str, Value], json_body: str = "dict") -> Any:
    """The request in the shape ModelArts hands to ``_preprocess`` (see the module doc)."""
    if inputs and all(v.kind in ("raw_json", "json") for v in inputs.values()):
        if json_body == "text":
            return "{" + ",".join(
                json.dumps(k) + ":" + (bytes(v.payload).decode("utf-8") if v.kind == "raw_json"
                                       else json.dumps(v.payload))
                for k, v in inputs.items()) + "}"
        return {k: v.decoded() for k, v in inputs.items()}
    data: dict[str, Any] = {}
    for key, value in inputs.items():
        if value.kind == "bytes":
            filename = value.filename or key
            data[key] = {filename: UploadedFile(bytes(value.payload), filename)}
        else:
            data[key] = value.decoded()
    return data
