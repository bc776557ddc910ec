"""``Package``: what the rest of the platform needs to know about a validated package.

The builder reads ``requirements``/``python``/``base_image``, the runtime reads
``kind``/``entrypoint``/``predictor``/``batching``, and the gateway and CLI read
``interface()`` to decode requests and print call examples. Nothing here touches disk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelport.package.config import Batching, Health, Resources

#: "image": a custom container image serving HTTP (ModelArts model_type "Image")
PackageKind = Literal["file_contract", "predictor", "modelarts", "image"]


@dataclass
class _Field:
    name: str
    type: str
    path: str | None = None
    dtype: str | None = None
    shape: list[int] | None = None
    description: str | None = None
    example: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class InputSpec(_Field):
    """One request field. ``name`` is what clients send: the config's ``name`` if given,
    else its ``path`` (file contract); ``path`` is where the worker writes the value."""


@dataclass
class OutputSpec(_Field):
    """One result field (a file for the file contract, a key or OIP tensor otherwise)."""


@dataclass
class Package:
    """A validated package rooted at the directory that holds its ``config.json``."""

    root: Path
    kind: PackageKind
    config: dict[str, Any]
    name: str
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    requirements: str
    digest: str
    python: str | None = None
    entrypoint: str | None = None  # file contract: the command run per request
    predictor: str | None = None  # "module:Class"; ModelArts: "customize_service:<Class>"
    base_image: str | None = None
    content_type: str | None = None  # request body type a ModelArts api declares
    #: a ModelArts api's request/response JSON schemas, as written (OpenAPI uses them)
    request_schema: dict[str, Any] | None = None
    response_schema: dict[str, Any] | None = None
    timeout_s: float | None = None
    resources: Resources | None = None
    env: dict[str, str] = field(default_factory=dict)
    health: Health | None = None
    batching: Batching | None = None
    #: custom image: an image on the Docker host ("name:tag"), or a Dockerfile in the
    #: package to build; the HTTP port the container serves on
    image: str | None = None
    dockerfile: str | None = None
    port: int | None = None
    #: custom image: the paths its ModelArts ``apis`` declare (shown in call examples)
    paths: list[str] = field(default_factory=list)

    def interface(self) -> dict[str, Any]:
        """The request/response shape, JSON-able, for call examples and OpenAPI."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "inputs": [i.to_dict() for i in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs],
        }
        if self.content_type:
            out["content_type"] = self.content_type
        if self.request_schema is not None:
            out["request_schema"] = self.request_schema
        if self.response_schema is not None:
            out["response_schema"] = self.response_schema
        if self.batching:
            out["batching"] = self.batching.model_dump()
        if self.kind == "image":
            out["port"] = self.port
            out["paths"] = list(self.paths)
        return out

    def summary(self) -> dict[str, Any]:
        """A short JSON-able description for listings, events and CLI output."""
        return {
            "name": self.name,
            "kind": self.kind,
            "digest": self.digest,
            "runs": self.predictor or self.entrypoint or self.image or (
                f"image built from {self.dockerfile}" if self.dockerfile else None),
            "inputs": [f"{i.name}:{i.type}" for i in self.inputs],
            "outputs": [f"{o.name}:{o.type}" for o in self.outputs],
            "python": self.python,
            "requirements": sum(
                1
                for line in self.requirements.splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ),
        }
