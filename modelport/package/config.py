"""The shape of ``config.json`` for each package kind, as pydantic models.

Validators raise ``PydanticCustomError`` whose context carries a ``fix``, so every
problem pydantic finds can be shown with a message and what to do about it
(see ``problems.py``). Checks that need the package's files live in ``checks.py``.
"""

from __future__ import annotations

import keyword
import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

FILE_CONTRACT_INPUT_TYPES = ("image", "text")
PREDICTOR_TYPES = ("text", "image", "file", "json", "number", "tensor")
#: Open Inference Protocol v2 tensor datatypes
DTYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)
#: numpy spellings people write out of habit, mapped to the OIP name
_NUMPY_DTYPES = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "bytes": "BYTES",
}
MODELARTS_MODEL_TYPES = (
    "TensorFlow",
    "PyTorch",
    "MXNet",
    "Caffe",
    "Spark_MLlib",
    "Scikit_Learn",
    "XGBoost",
    "MindSpore",
    "Image",
    "Custom",
)
_RESTRAINTS = {"EXACT": "==", "ATLEAST": ">=", "ATMOST": "<="}
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# ASCII digits ([0-9], not \d): "٣.١١" matched \d and went on to the builder and runtime
_PYTHON = re.compile(r"^[23]\.[0-9]{1,2}(\.[0-9]{1,3})?$")
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|K|M|G|T)?$")
#: what the platform's protobuf fields take (GPU counts, batch sizes) and byte counts
INT32_MAX = 2**31 - 1
MAX_MEMORY_BYTES = 2**63 - 1
_MEMORY_UNITS = {
    None: 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 1 << 10,
    "Mi": 1 << 20,
    "Gi": 1 << 30,
    "Ti": 1 << 40,
}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MODELARTS_FORBIDDEN = re.compile(r"[&!\"'<>=]|[^\x00-\x7f]")


def _fail(code: str, message: str, fix: str, **ctx: Any) -> PydanticCustomError:
    """A validation error carrying its fix; ``code`` becomes the problem's code."""
    return PydanticCustomError(code, message, {"fix": fix, **ctx})


class _Strict(BaseModel):
    """Unknown keys are errors, so a typo like ``entrypiont`` is reported, not ignored."""

    model_config = ConfigDict(extra="forbid")


# -- fields every kind may carry ------------------------------------------------------


class Resources(_Strict):
    """What one replica needs; the scheduler places replicas by it."""

    cpu: float | None = Field(None, gt=0)
    memory: str | None = None
    gpu: int = Field(0, ge=0, le=INT32_MAX)

    @field_validator("memory")
    @classmethod
    def _memory(cls, v: str | None) -> str | None:
        m = _MEMORY.match(v) if v is not None else None
        if v is not None and m is None:
            raise _fail(
                "memory_format",
                "memory '{value}' is not a size",
                'write it like "512Mi" or "2Gi"',
                value=v[:60],
            )
        # 400 digits are a float too large for a double (inf): int(inf) failed later
        if m is not None and not float(m.group(1)) * _MEMORY_UNITS[m.group(2)] <= MAX_MEMORY_BYTES:
            raise _fail(
                "memory_too_large",
                "memory '{value}' is more bytes than any machine has",
                'write a real size, like "512Mi" or "2Gi"',
                value=v[:60],
            )
        return v

    @property
    def memory_bytes(self) -> int | None:
        if self.memory is None:
            return None
        m = _MEMORY.match(self.memory)
        assert m is not None
        return int(float(m.group(1)) * _MEMORY_UNITS[m.group(2)])


class Probe(_Strict):
    """One probe's timing (services/runtime/probes.py); ModelArts field names."""

    initial_delay_seconds: int | None = Field(None, ge=0, le=2147483647)
    timeout_seconds: int | None = Field(None, ge=0, le=2147483647)
    period_seconds: int | None = Field(None, gt=0, le=2147483647)
    failure_threshold: int | None = Field(None, gt=0, le=2147483647)


class Health(_Strict):
    """Startup, readiness and liveness probes; the field names follow ModelArts so its
    configs carry over. The flat fields apply to every probe; ``startup``, ``readiness``
    and ``liveness`` override one (services/runtime/probes.py)."""

    check_method: Literal["HTTP", "EXEC"] | None = None
    url: str | None = None
    protocol: str | None = None
    command: str | None = None
    initial_delay_seconds: int | None = Field(None, ge=0)
    timeout_seconds: int | None = Field(None, ge=0)
    period_seconds: int | None = Field(None, gt=0, le=2147483647)
    failure_threshold: int | None = Field(None, gt=0, le=2147483647)
    startup: Probe | None = None
    readiness: Probe | None = None
    liveness: Probe | None = None

    @field_validator("check_method", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v


class Batching(_Strict):
    """Opt-in dynamic batching: the runtime calls ``predict_batch`` with up to N inputs."""

    max_batch_size: int = Field(ge=1, le=INT32_MAX)
    max_latency_ms: float = Field(10.0, gt=0)


class CommonConfig(_Strict):
    description: str | None = None
    resources: Resources | None = None
    env: dict[str, str] | None = None
    health: Health | None = None
    timeout_s: float | None = Field(None, gt=0)
    python: str | None = None
    #: fail the build when `python` is unavailable instead of using the nearest version
    python_strict: bool = False
    #: the docker runtime's base image for this package (the process runtime ignores it)
    base_image: str | None = Field(None, min_length=1)

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        for name in v or {}:
            if not _ENV_NAME.match(name):
                raise _fail(
                    "env_name",
                    "'{value}' is not a valid environment variable name",
                    "use letters, digits and underscores, not starting with a digit",
                    value=name,
                )
        return v

    @field_validator("python")
    @classmethod
    def _python(cls, v: str | None) -> str | None:
        if v is not None and not _PYTHON.match(v):
            raise _fail(
                "python_version",
                "python '{value}' is not a version number",
                'write it like "3.11"',
                value=v,
            )
        return v


def _model_algorithm(v: str) -> str:
    """ModelArts' rule for ``model_algorithm``."""
    if (
        not v[:1].isascii()
        or not v[:1].isalpha()
        or _MODELARTS_FORBIDDEN.search(v)
        or len(v) > 36
    ):
        raise _fail(
            "model_algorithm",
            "model_algorithm '{value}' is not a valid name",
            "start with a letter, use at most 36 ASCII characters and none of "
            '&!"\'<>=, e.g. "image_classification"',
            value=v,
        )
    return v


def _check_type(v: str, allowed: tuple[str, ...], what: str) -> str:
    if v not in allowed:
        raise _fail(
            f"unknown_{what}_type",
            f"unknown {what} type '{{value}}'",
            "use one of: " + ", ".join(allowed),
            value=v,
        )
    return v


# -- file contract (the call_tool config.json) ---------------------------------------


class FileInput(_Strict):
    path: str = Field(min_length=1)
    type: str
    name: str | None = Field(None, min_length=1)

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return _check_type(v, FILE_CONTRACT_INPUT_TYPES, "input")


class FileOutput(_Strict):
    path: str = Field(min_length=1)
    type: str

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return _check_type(v, ("json",), "output")


class FileContractConfig(CommonConfig):
    """Inputs are written to files, ``entrypoint`` runs, one JSON file is read back."""

    name: str = Field(min_length=1)
    input: list[FileInput] = Field(min_length=1)
    output: list[FileOutput]
    entrypoint: str = Field(min_length=1)

    @field_validator("output", mode="before")
    @classmethod
    def _one_output(cls, v: Any) -> Any:
        if isinstance(v, list) and len(v) != 1:
            raise _fail(
                "output_count",
                "the file contract needs exactly one output, found {n}",
                "write every result into one JSON file and list only that file",
                n=len(v),
            )
        return v


# -- predictor (modelport-native) -----------------------------------------------------


class _Tensor(_Strict):
    name: str = Field(min_length=1)
    type: str
    dtype: str | None = None
    shape: list[int] | None = None
    description: str | None = None
    example: Any = None  # shown in generated call examples

    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return _check_type(v, PREDICTOR_TYPES, "input")

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, v: str | None) -> str | None:
        if v is None:
            return v
        name = _NUMPY_DTYPES.get(v.lower(), v.upper())
        if name not in DTYPES:
            raise _fail(
                "unknown_dtype",
                "unknown dtype '{value}'",
                "use an Open Inference Protocol dtype: " + ", ".join(DTYPES),
                value=v,
            )
        return name

    @field_validator("shape")
    @classmethod
    def _shape(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and any(d < -1 for d in v):
            raise _fail(
                "bad_shape",
                "shape {value} has a dimension below -1",
                "use sizes >= 0, or -1 for a dimension of any size",
                value=v,
            )
        return v

    @model_validator(mode="after")
    def _tensor_only(self) -> _Tensor:
        if self.type != "tensor" and (self.dtype is not None or self.shape is not None):
            raise _fail(
                "tensor_only",
                "dtype and shape apply only to tensor entries",
                'set "type": "tensor", or remove dtype and shape',
            )
        return self


class PredictorInput(_Tensor):
    @field_validator("name")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not _IDENT.match(v) or keyword.iskeyword(v):
            raise _fail(
                "input_name",
                "input name '{value}' is not a Python identifier",
                "inputs arrive as predict(**inputs): use letters, digits and "
                'underscores, e.g. "image_bytes"',
                value=v,
            )
        return v


class PredictorOutput(_Tensor):
    @field_validator("type")
    @classmethod
    def _type(cls, v: str) -> str:
        return _check_type(v, PREDICTOR_TYPES, "output")


class PredictorConfig(CommonConfig):
    """A Python class loaded once (``setup``) and called per request (``predict``)."""

    name: str = Field(min_length=1)
    predictor: str
    input: list[PredictorInput]
    output: list[PredictorOutput] | None = None
    batching: Batching | None = None

    @field_validator("predictor")
    @classmethod
    def _ref(cls, v: str) -> str:
        if parse_predictor_ref(v) is None:
            raise _fail(
                "predictor_ref",
                "predictor '{value}' is not of the form module:Class",
                'name the file and the class, e.g. "predict:Predictor" for class '
                "Predictor in predict.py",
                value=v,
            )
        return v


def parse_predictor_ref(ref: Any) -> tuple[str, str] | None:
    """``"pkg.module:Class"`` -> ``("pkg.module", "Class")``; None if malformed, which also
    keeps a reference like ``../x:C`` from ever being turned into a file path."""
    if not isinstance(ref, str):
        return None
    module, sep, cls_name = ref.partition(":")
    if not sep or not _DOTTED.match(module) or not _IDENT.match(cls_name):
        return None
    return module, cls_name


# -- ModelArts ------------------------------------------------------------------------


class ModelArtsPackage(_Strict):
    package_name: str = Field(min_length=1)
    package_version: str | None = None
    restraint: str | None = None

    @field_validator("package_name", "package_version")
    @classmethod
    def _chars(cls, v: str | None) -> str | None:
        if v and _MODELARTS_FORBIDDEN.search(v):
            raise _fail(
                "package_chars",
                "'{value}' contains a character pip cannot use here",
                "leave out &!\"'<>= and non-ASCII characters; put the version "
                "in package_version and the comparison in restraint",
                value=v,
            )
        return v

    @field_validator("restraint")
    @classmethod
    def _restraint(cls, v: str | None) -> str | None:
        if v and v.upper() not in _RESTRAINTS:
            raise _fail(
                "restraint", "unknown restraint '{value}'", "use EXACT, ATLEAST or ATMOST", value=v
            )
        return v.upper() if v else v

    @model_validator(mode="after")
    def _paired(self) -> ModelArtsPackage:
        if bool(self.package_version) != bool(self.restraint):
            raise _fail(
                "restraint_pair",
                "package_version and restraint must be given together",
                'add "restraint": "EXACT" with the version, or drop both',
            )
        return self

    def requirement(self) -> str:
        """Render as a pip requirement line, e.g. ``numpy==1.26.4``."""
        if self.package_version and self.restraint:
            return f"{self.package_name}{_RESTRAINTS[self.restraint]}{self.package_version}"
        return self.package_name


class ModelArtsDependency(_Strict):
    installer: Literal["pip"] = "pip"
    packages: list[ModelArtsPackage]


class ModelArtsMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    content_type: str | None = Field(
        None, validation_alias=AliasChoices("Content-type", "Content-Type", "content-type")
    )
    data: dict[str, Any] | str | None = None


class ModelArtsApi(BaseModel):
    model_config = ConfigDict(extra="allow")

    protocol: str | None = None
    url: str = "/"
    method: str = "POST"
    request: ModelArtsMessage | None = None
    response: ModelArtsMessage | None = None


class ModelArtsConfig(CommonConfig):
    """A ModelArts ``model/config.json``; unknown top-level keys are tolerated, since
    ModelArts documents more fields (``metrics``, ``swr_location``) than run here."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model_type: str
    model_algorithm: str
    runtime: str | None = None
    apis: list[ModelArtsApi] | None = None
    dependencies: list[ModelArtsDependency] | None = None

    @field_validator("model_type")
    @classmethod
    def _model_type(cls, v: str) -> str:
        for known in MODELARTS_MODEL_TYPES:
            if v.lower() == known.lower():
                return known
        raise _fail(
            "model_type",
            "unknown model_type '{value}'",
            "use one of: " + ", ".join(MODELARTS_MODEL_TYPES),
            value=v,
        )

    @field_validator("model_algorithm")
    @classmethod
    def _algorithm(cls, v: str) -> str:
        return _model_algorithm(v)

    def requirements(self) -> list[str]:
        return [p.requirement() for d in self.dependencies or [] for p in d.packages]


# -- custom container image (ModelArts model_type "Image") ----------------------------

#: a Docker image reference: [host[:port]/]path[:tag][@sha256:digest], or an image id
_IMAGE_REF = re.compile(
    r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
    r"|sha256:[a-f0-9]{64})$",
    re.ASCII,
)
#: what an image package's container must serve on, unless config.json says otherwise
DEFAULT_IMAGE_PORT = 8080
DEFAULT_HEALTH_URL = "/health"
_IMAGE_FIX = (
    'add "image": {"dockerfile": "Dockerfile"} (built from this package, FROM an image the '
    'Docker host has) or "image": "name:tag" (an image already on the Docker host)'
)


class ImageBuild(_Strict):
    """``"image": {"dockerfile": "Dockerfile"}``: built by the builder with the folder of
    config.json as the build context."""

    dockerfile: str = Field("Dockerfile", min_length=1)


class ImageConfig(CommonConfig):
    """A custom container image serving HTTP on ``port`` (ModelArts ``model_type``
    ``Image``). Like ModelArts' config, unknown top-level keys (``metrics``,
    ``swr_location``) are tolerated."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model_type: str | None = None
    model_algorithm: str | None = None
    name: str | None = Field(None, min_length=1)
    image: ImageBuild | str | None = None
    port: int = Field(DEFAULT_IMAGE_PORT, ge=1, le=65535)
    #: ModelArts: "not needed when model_type=Image"; accepted and not used
    runtime: str | None = None
    apis: list[ModelArtsApi] | None = None
    dependencies: Any = None

    @field_validator("model_type")
    @classmethod
    def _model_type(cls, v: str | None) -> str | None:
        if v is not None and v.lower() != "image":
            raise _fail(
                "model_type",
                "model_type '{value}' does not go with \"image\"",
                'a custom image is "model_type": "Image"; for a framework model drop '
                '"image" and add customize_service.py',
                value=v,
            )
        return "Image" if v is not None else v

    @field_validator("model_algorithm")
    @classmethod
    def _algorithm(cls, v: str | None) -> str | None:
        return _model_algorithm(v) if v is not None else v

    @field_validator("image", mode="before")
    @classmethod
    def _image(cls, v: Any) -> Any:
        """One error per mistake (a union would report one per member)."""
        if v is None:
            return v
        if isinstance(v, str):
            if not _IMAGE_REF.match(v):
                raise _fail(
                    "image_ref",
                    "image '{value}' is not a Docker image reference",
                    'write it like "my-model:1.0" or "registry.example.com/team/model:1.0", '
                    "as `docker images` lists it",
                    value=v[:120],
                )
            return v
        if not isinstance(v, dict):
            raise _fail("image_type", "image must be a string or an object", _IMAGE_FIX)
        for key in v:
            if key != "dockerfile":
                raise _fail(
                    "unknown_field",
                    "unknown field '{value}' in image",
                    "did you mean 'dockerfile'?" if str(key).lower().startswith("docker")
                    else 'an image object has one key: "dockerfile"',
                    value=str(key)[:120],
                )
        dockerfile = v.get("dockerfile", "Dockerfile")
        if not isinstance(dockerfile, str) or not dockerfile.strip():
            raise _fail("dockerfile_path", "image.dockerfile must be a file name",
                        'write the Dockerfile\'s path in the package, e.g. "Dockerfile"')
        return ImageBuild(dockerfile=dockerfile)

    @field_validator("dependencies")
    @classmethod
    def _dependencies(cls, v: Any) -> Any:
        if v:  # ModelArts' own event text
            raise _fail(
                "image_dependencies",
                "Customize model does not support dependencies",
                "install them in the image instead (RUN pip install ... in the Dockerfile) "
                "and remove dependencies",
            )
        return v

    @field_validator("base_image")
    @classmethod
    def _base_image(cls, v: str | None) -> str | None:
        if v is not None:
            raise _fail(
                "image_base_image",
                "base_image does not apply to a custom image",
                "name the base in the Dockerfile's FROM line (an image the Docker host "
                "has, e.g. modelport/base:bookworm) and remove base_image",
            )
        return v

    @field_validator("python")
    @classmethod
    def _no_python(cls, v: str | None) -> str | None:
        if v is not None:
            raise _fail(
                "image_python",
                "python does not apply to a custom image: it brings its own",
                "remove python; pick the interpreter in the Dockerfile",
            )
        return v

    @model_validator(mode="after")
    def _image_given(self) -> ImageConfig:
        if self.image is None:
            swr = (self.model_extra or {}).get("swr_location")
            if swr:
                raise _fail(
                    "image_swr_location",
                    "swr_location names an image in a registry, which this platform does "
                    "not pull from",
                    "put the image on the Docker host (`docker load -i image.tar` of a "
                    "`docker save`, or `docker tag`) and name it in \"image\": "
                    '"name:tag"',
                )
            raise _fail("image_missing", "a custom image package names no image",
                        _IMAGE_FIX)
        return self

    @field_validator("health")
    @classmethod
    def _health_check(cls, h: Health | None) -> Health | None:
        if h is None:
            return h
        method = h.check_method or "HTTP"
        if method == "EXEC" and not (h.command or "").strip():
            raise _fail(
                "health_command",
                "health check_method EXEC needs a command",
                'add "command": "cat /tmp/ready" (run in the container; exit code 0 '
                "passes), or use check_method HTTP",
            )
        if method == "HTTP":
            if h.url is not None and not h.url.startswith("/"):
                raise _fail(
                    "health_url",
                    "health url '{value}' is not a path",
                    f'write the path the image answers on, like "{DEFAULT_HEALTH_URL}"',
                    value=h.url[:120],
                )
            if h.protocol is not None and h.protocol.lower() != "http":
                raise _fail(
                    "health_protocol",
                    "health protocol '{value}' is not supported for a custom image",
                    "serve plain HTTP on the port (the platform reaches the container "
                    'inside its own network namespace) and set "protocol": "http" or '
                    "leave it out",
                    value=h.protocol[:40],
                )
        return h


KIND_MODELS: dict[str, type[CommonConfig]] = {
    "file_contract": FileContractConfig,
    "predictor": PredictorConfig,
    "modelarts": ModelArtsConfig,
    "image": ImageConfig,
}
