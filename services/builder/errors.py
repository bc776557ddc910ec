"""The errors the builder reports to its callers, each built from its fields."""

from __future__ import annotations

from modelport.errors import ModelportError, invalid, not_found, unavailable


def build_not_found(build_id: str) -> ModelportError:
    return not_found("build.not_found", f"no build with id {build_id!r}",
                     fix="use the id that StartBuild returned")


def target_unavailable(target: str) -> ModelportError:
    if target == "docker":
        return invalid("build.target_unavailable",
                       "this builder was started without docker builds",
                       fix="deploy with `runtime: process`", path="target")
    return invalid("build.target_unknown", f"unknown build target {target!r}",
                   fix="use `process` or `docker`", path="target")


def package_dir_missing(package_dir: str) -> ModelportError:
    return invalid("build.package_dir_missing",
                   f"a docker build copies the package, but package_dir {package_dir!r} is "
                   "not a directory on the builder's host",
                   fix="pass the extracted package's directory", path="package_dir")


def python_malformed(request: str) -> ModelportError:
    return invalid("build.python_malformed",
                   f"python must be a version such as 3.11 or 3.11.7, not {request!r}",
                   fix="set `python` in config.json to a version, or leave it out",
                   path="python")


def python_unavailable(request: str, default_version: str, strict: bool = False
                       ) -> ModelportError:
    if strict:
        return invalid("build.python_unavailable",
                       f"Python {request} is not available on the builder host, and "
                       "python_strict forbids building with another version",
                       fix=f"install Python {request} there (e.g. `uv python install "
                           f"{request}`; the worker needs >= 3.8), or drop "
                           f'"python_strict" to build with the nearest available version',
                       path="python")
    return invalid("build.python_unavailable",
                   f"Python {request} is not installed on the builder host, nor any Python "
                   "of the same major version the worker can run on",
                   fix=f"install it there (e.g. `uv python install {request}`), or leave "
                       f"`python` out to use the builder's Python {default_version}",
                   path="python")


def default_python_broken(python: str, reason: str) -> ModelportError:
    return unavailable("build.python_broken",
                       f"the builder's Python {python} cannot run: {reason}",
                       fix="set MODELPORT_BUILDER_PYTHON to a working interpreter")
