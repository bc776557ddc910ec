"""Docker images for the Docker runtime, one per (base image, requirements, package).

An image's key is the sha256 of the base image's id, the normalized requirements and the
package's content digest; it is tagged ``modelport/model:<key>``, so a version whose
content repeats reuses its image at once. Layout inside the image (the runtime's Docker
backend relies on it, ``services/runtime/backends/docker.py``):

    /opt/modelport/venv/          a virtualenv over the base image's own Python:
        pyvenv.cfg, bin/python -> the image's python3, lib/pythonX.Y/site-packages
    /opt/modelport/package/       the package's files
    /opt/modelport/image.json     what it was built from (base, Python, digests)

Dependencies are installed on the host, not inside the image build: ``uv pip install
--target`` for the base image's Python version and platform (probed once per base image),
with the index settings of the host's pip configuration (``pipconfig.py``). So a build
works behind a corporate mirror or a TLS-intercepting proxy whose CA bundle only the host
has, and the containers never need the network. The installed dependencies are cached
(``envs/image-deps-<key>``) by Python version, platform and requirements, across images.

One ``COPY`` layer on the base image and nothing else (what the image holds is in
``/opt/modelport/image.json``, not in labels: each Dockerfile instruction costs a
container, and vfs copies every layer whole) keeps builds quick on any storage driver.
A base image the host does not have is pulled when possible; otherwise the build fails
saying how to provide it (``docker load``/``docker import``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.builder.buildlog import BuildLog, StepFailed
from services.builder.pipconfig import redact
from services.builder.venv import clean_environ, normalize_requirements
from services.component.own_thread import in_own_thread

log = logging.getLogger(__name__)

REPOSITORY = "modelport/model"
#: custom image packages' images, one tag per (image id) or (Dockerfile, package, bases)
CUSTOM_REPOSITORY = "modelport/image"
FORMAT = "modelport image v1"
CUSTOM_FORMAT = "modelport custom image v1"
IMAGE_ROOT = "/opt/modelport"
DEPS_PREFIX = "image-deps-"
_PROBE = ("import json, os, platform, sys; print(json.dumps({'version': "
          "platform.python_version(), 'executable': os.path.realpath(sys.executable), "
          "'machine': platform.machine(), 'libc': platform.libc_ver()}))")
#: the manylinux tags uv knows (``uv pip install --python-platform``)
_MANYLINUX = (17, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40)


@dataclass(frozen=True)
class ImageSpec:
    key: str
    base_image: str
    base_id: str  # "" when the host does not have it yet (the build pulls it)
    requirements: str  # normalized
    package_dir: Path
    package_digest: str
    label: str = ""

    @property
    def tag(self) -> str:
        return f"{REPOSITORY}:{self.key}"

    @property
    def source(self) -> str:
        return self.base_image


@dataclass(frozen=True)
class CustomImageSpec:
    """A custom image package's image (config.json ``image``): ``ref``, an image the
    Docker host has, tagged for the version as it is; or ``dockerfile``, built from the
    package (the folder of config.json is the build context). ``bases``: the Dockerfile's
    FROM images and their ids ("" where the host lacks one; the build pulls it or fails
    saying how to provide it)."""

    key: str
    package_dir: Path
    package_digest: str
    ref: str = ""
    ref_id: str = ""
    dockerfile: str = ""
    bases: tuple[tuple[str, str], ...] = ()
    label: str = ""

    @property
    def tag(self) -> str:
        return f"{CUSTOM_REPOSITORY}:{self.key}"

    @property
    def source(self) -> str:
        return self.ref or f"{self.dockerfile} of the package"


@dataclass(frozen=True)
class PythonProbe:
    """The base image's interpreter, as the image reports it."""

    version: str  # "3.11.2"
    executable: str  # "/usr/bin/python3.11"
    machine: str  # "x86_64"
    libc: tuple[str, str]  # ("glibc", "2.36") or ("", "") for musl

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def platform(self) -> str:
        """uv's ``--python-platform`` for this interpreter."""
        machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(self.machine, self.machine)
        name, version = self.libc
        if name != "glibc":
            return f"{machine}-unknown-linux-musl"
        try:
            minor = int(version.split(".")[1])
        except (IndexError, ValueError):
            minor = 17
        best = max((m for m in _MANYLINUX if m <= minor), default=17)
        return f"{machine}-manylinux_2_{best}"


def image_key(base: str, requirements: str, package_digest: str) -> str:
    text = f"{FORMAT}\nbase {base}\npackage {package_digest}\nrequirements\n{requirements}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def deps_key(probe: PythonProbe, requirements: str) -> str:
    text = f"{FORMAT} deps\npython {probe.minor}\nplatform {probe.platform()}\n{requirements}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def tree_digest(root: Path) -> str:
    """sha256 over a directory's relative paths and contents (when no digest was given)."""
    h = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()


def missing_base_message(base: str, reason: str) -> str:
    return (f"base image {base} is not on the Docker host and could not be pulled ({reason}). "
            f"Provide it there: `docker pull {base}` where a registry is reachable, "
            f"`docker load -i image.tar` for a saved image, or `docker import rootfs.tar "
            f"{base}`; or set base_image in config.json to an image the host has "
            "(`docker images`)")


def missing_image_message(ref: str, reason: str, what: str = "image") -> str:
    """A custom image package's image (or its Dockerfile's FROM image) the host lacks."""
    return (f"{what} {ref} is not on the Docker host and could not be pulled ({reason}); "
            "no registry is needed if the host has it: `docker load -i image.tar` (a "
            f"`docker save` of it made where it exists), or `docker tag SOURCE {ref}` for "
            "an image the host has under another name (`docker images` lists them)")


def from_images(text: str) -> list[str]:
    """The images a Dockerfile's FROM lines name (not ``scratch``, earlier stages or
    references built from ARGs, which Docker resolves itself), in order."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        lines.append(current + line)
        current = ""
    if current:
        lines.append(current)
    stages: set[str] = set()
    out: list[str] = []
    for line in lines:
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if not args:
            continue
        ref = args[0]
        if len(args) >= 3 and args[1].upper() == "AS":
            stages.add(args[2].lower())
        if ref.lower() == "scratch" or ref.lower() in stages or "$" in ref:
            continue
        if ref not in out:
            out.append(ref)
    return out


def custom_key(*parts: str) -> str:
    text = "\n".join((CUSTOM_FORMAT, *parts))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def dockerfile(base_id: str) -> str:
    return f"FROM {base_id}\nCOPY opt/ {IMAGE_ROOT}/\n"


class ImageBuilder:
    """Plans, finds and builds images on the Docker engine the builder can reach."""

    def __init__(self, work_dir: Path, deps_dir: Path, *, uv: Path | None, host_python: str,
                 index_env: Callable[[], Awaitable[dict[str, str]]],
                 default_base_image: str, pull: bool = True, step_timeout_s: float = 1800.0,
                 client_factory: Callable[[], Any] | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.work_dir = Path(work_dir)
        self.deps_dir = Path(deps_dir)
        self.uv = uv
        self.host_python = host_python
        self.default_base_image = default_base_image
        self.pull = pull
        self.step_timeout_s = step_timeout_s
        self._index_env = index_env
        self._factory = client_factory
        self._environ = clean_environ(os.environ if environ is None else environ)
        self._client: Any = None
        self._present: dict[str, str] = {}  # key -> tag, as last seen by plan/build
        self._probes: dict[str, PythonProbe] = {}

    # -- the engine -----------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._client is None:
            import docker

            client = self._factory() if self._factory else docker.from_env(timeout=120)
            client.ping()
            self._client = client
        return self._client

    async def client(self) -> Any:
        try:
            return await asyncio.to_thread(self._connect)
        except Exception as exc:
            host = self._environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise StepFailed(f"no Docker engine answers at {host} ({exc}); start dockerd on "
                             "the builder's host (.ci/docker-setup does it), or deploy with "
                             "`runtime: process`") from None

    # -- planning -------------------------------------------------------------------------

    async def plan(self, *, base_image: str, requirements: str, package_dir: str,
                   package_digest: str = "", label: str = "", image: str = "",
                   dockerfile: str = "") -> ImageSpec | CustomImageSpec:
        """The image's key; raises StepFailed when no engine answers (or a custom image
        cannot be had: ``_plan_custom``)."""
        client = await self.client()
        if image or dockerfile:
            custom = await self._plan_custom(client, image, dockerfile, package_dir,
                                             package_digest, label)
            if await asyncio.to_thread(_image_id, client, custom.tag):
                self._present[custom.key] = custom.tag
            else:
                self._present.pop(custom.key, None)
            return custom
        base = base_image.strip() or self.default_base_image
        base_id = await asyncio.to_thread(_image_id, client, base)
        normalized = normalize_requirements(requirements)
        digest = package_digest or await asyncio.to_thread(tree_digest, Path(package_dir))
        key = image_key(base_id or f"pull:{base}", normalized, digest)
        spec = ImageSpec(key, base, base_id, normalized, Path(package_dir), digest, label)
        if await asyncio.to_thread(_image_id, client, spec.tag):
            self._present[key] = spec.tag
        else:
            self._present.pop(key, None)
        return spec

    def existing(self, key: str) -> dict[str, Any] | None:
        """The image for `key` when the last look (plan or build) found it, else None."""
        tag = self._present.get(key)
        return {"tag": tag} if tag else None

    def artifact_of(self, key: str) -> str:
        return self._present.get(key) or f"{REPOSITORY}:{key}"

    async def _plan_custom(self, client: Any, image: str, dockerfile_path: str,
                           package_dir: str, package_digest: str, label: str
                           ) -> CustomImageSpec:
        """A custom image's key: the image's id (``image``), or the Dockerfile, the package
        and the ids of its FROM images (``dockerfile``). An image the host lacks fails the
        build at once when pulling is off."""
        if image:
            ref_id = await asyncio.to_thread(_image_id, client, image)
            if not ref_id and not self.pull:
                raise StepFailed(missing_image_message(
                    image, "pulling is off: MODELPORT_BUILDER_DOCKER_PULL=false"))
            return CustomImageSpec(custom_key("ref", ref_id or f"pull:{image}"),
                                   Path(package_dir), package_digest, ref=image,
                                   ref_id=ref_id, label=label)
        root = Path(package_dir)
        try:
            text = await asyncio.to_thread((root / dockerfile_path).read_text,
                                           encoding="utf-8", errors="replace")
        except OSError as exc:
            raise StepFailed(f"the package has no Dockerfile {dockerfile_path} ({exc.strerror})"
                             "; add it next to config.json") from None
        bases = []
        for ref in from_images(text):
            found = await asyncio.to_thread(_image_id, client, ref)
            if not found and not self.pull:
                raise StepFailed(missing_image_message(
                    ref, "pulling is off: MODELPORT_BUILDER_DOCKER_PULL=false",
                    f"{dockerfile_path}'s FROM image"))
            bases.append((ref, found))
        digest = package_digest or await asyncio.to_thread(tree_digest, root)
        key = custom_key("dockerfile", dockerfile_path, digest,
                         *(f"{ref} {found or 'pull'}" for ref, found in bases))
        return CustomImageSpec(key, root, digest, dockerfile=dockerfile_path,
                               bases=tuple(bases), label=label)

    def remove_stale(self) -> list[Path]:
        """Build contexts and half-installed dependencies a stopped builder left behind."""
        removed = []
        for pattern, root in (("ctx-*", self.work_dir), (f"{DEPS_PREFIX}*.tmp-*", self.deps_dir)):
            if root.is_dir():
                for path in root.glob(pattern):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
        return removed

    # -- building -------------------------------------------------------------------------

    async def build(self, spec: ImageSpec | CustomImageSpec, build_id: str,
                    blog: BuildLog) -> str:
        """Build (or find) the image for `spec` and return its tag; raises StepFailed."""
        client = await self.client()
        if isinstance(spec, CustomImageSpec):
            return await self._build_custom(client, spec, blog)
        blog.line(f"image {spec.tag} from {spec.base_image}; package {spec.package_digest[:19]}")
        blog.step(1, 5, f"base image {spec.base_image}")
        base_id = spec.base_id or await self._pull(client, spec.base_image, blog)
        blog.line(f"base image {spec.base_image} is {base_id[:19]}")
        blog.step(2, 5, "probe the base image's Python")
        probe = await self._probe(client, base_id, spec.base_image, blog)
        blog.step(3, 5, "install requirements on the host for the image's Python")
        deps = await self._deps(probe, spec.requirements, build_id, blog)
        blog.step(4, 5, "assemble the build context")
        context = self.work_dir / f"ctx-{build_id}"
        try:
            about = {"key": spec.key, "base_image": spec.base_image, "base_id": base_id,
                     "python": probe.version, "platform": probe.platform(), "deps": deps.name,
                     "package_digest": spec.package_digest, "label": spec.label,
                     "build_id": build_id, "built": time.time()}
            await asyncio.to_thread(_assemble, context, probe, deps, spec.package_dir, base_id,
                                    about)
            blog.line("Dockerfile:")
            for line in dockerfile(base_id).splitlines():
                blog.line(f"    {line}")
            blog.step(5, 5, f"docker build -t {spec.tag}")
            await self._docker_build(client, context, spec.tag, blog)
        finally:
            await asyncio.to_thread(shutil.rmtree, context, True)
        self._present[spec.key] = spec.tag
        return spec.tag

    async def _build_custom(self, client: Any, spec: CustomImageSpec, blog: BuildLog) -> str:
        """A custom image: ``ref`` tagged for the version (so removing or moving its tag
        later changes no version), or the package's Dockerfile built (no network)."""
        if spec.ref:
            blog.step(1, 2, f"image {spec.ref}")
            ref_id = spec.ref_id or await self._pull(
                client, spec.ref, blog, lambda why: missing_image_message(spec.ref, why))
            blog.line(f"{spec.ref} is {ref_id[:19]}")
            blog.step(2, 2, f"docker tag {spec.ref} {spec.tag}")
            await asyncio.to_thread(_tag, client, ref_id, spec.tag)
        else:
            steps = 2
            blog.step(1, steps, "FROM images")
            for ref, found in spec.bases:
                found = found or await self._pull(client, ref, blog, lambda why, ref=ref: (
                    missing_image_message(ref, why, f"{spec.dockerfile}'s FROM image")))
                blog.line(f"FROM {ref}: {found[:19]}")
            try:
                text = (spec.package_dir / spec.dockerfile).read_text(errors="replace")
            except OSError:
                text = ""
            blog.line(f"{spec.dockerfile}:")
            for line in text.splitlines():
                blog.line(f"    {line}")
            blog.step(2, steps, f"docker build -f {spec.dockerfile} -t {spec.tag} (build "
                      "context: the package; no network)")
            await self._docker_build(client, spec.package_dir, spec.tag, blog,
                                     dockerfile=spec.dockerfile)
        self._present[spec.key] = spec.tag
        return spec.tag

    async def _pull(self, client: Any, base: str, blog: BuildLog,
                    missing: Callable[[str], str] | None = None) -> str:
        missing = missing or (lambda why: missing_base_message(base, why))
        if not self.pull:
            raise StepFailed(missing("pulling is off: MODELPORT_BUILDER_DOCKER_PULL=false"))
        blog.line(f"{base} is not on the Docker host; pulling it")
        loop = asyncio.get_running_loop()
        seen: set[str] = set()

        def pull() -> None:
            from docker.utils import parse_repository_tag

            repo, tag = parse_repository_tag(base)
            for msg in client.api.pull(repo, tag=tag or "latest", stream=True, decode=True):
                if "error" in msg:
                    raise RuntimeError(msg.get("error"))
                line = " ".join(str(msg[k]) for k in ("id", "status") if msg.get(k))
                if line and line not in seen:  # progress bars repeat; show each state once
                    seen.add(line)
                    loop.call_soon_threadsafe(blog.line, line)

        try:
            await asyncio.wait_for(in_own_thread(pull, "pull"), self.step_timeout_s)
        except Exception as exc:
            reason = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
            blog.line(f"pull failed: {reason}")
            raise StepFailed(missing(reason)) from None
        found = await asyncio.to_thread(_image_id, client, base)
        if not found:
            raise StepFailed(missing("the pull reported no image"))
        return found

    async def _probe(self, client: Any, base_id: str, base: str, blog: BuildLog) -> PythonProbe:
        """Run the base image's python once to learn its version and platform (cached)."""
        if (known := self._probes.get(base_id)) is not None:
            blog.line(f"python {known.version} at {known.executable} ({known.platform()})")
            return known
        cache = self.work_dir / "probes" / f"{base_id.replace(':', '-')}.json"
        try:
            probe = _probe_from(json.loads(cache.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            probe = await self._run_probe(client, base_id, base)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(probe.__dict__))
        self._probes[base_id] = probe
        blog.line(f"python {probe.version} at {probe.executable} ({probe.platform()})")
        if tuple(int(x) for x in probe.version.split(".")[:2]) < (3, 8):
            raise StepFailed(f"base image {base} has Python {probe.version}; the worker needs "
                             "3.8 or newer: pick another base_image")
        return probe

    async def _run_probe(self, client: Any, base_id: str, base: str) -> PythonProbe:
        import docker

        errors = []
        for command in ("python3", "python"):
            def run(command: str = command) -> bytes:
                return client.containers.run(base_id, [command, "-c", _PROBE], remove=True,
                                             network_mode="none", stdout=True, stderr=True)
            try:
                out = await asyncio.wait_for(in_own_thread(run, "probe"), 300)
                return _probe_from(json.loads(out.decode().strip().splitlines()[-1]))
            except (docker.errors.APIError, docker.errors.ContainerError, ValueError,
                    IndexError, KeyError, TimeoutError) as exc:
                errors.append(f"{command}: {getattr(exc, 'explanation', None) or exc}")
        raise StepFailed(f"base image {base} has no usable Python ({'; '.join(errors)[:400]}); "
                         "pick a base_image with python3 >= 3.8, e.g. python:3.11-slim")

    async def _deps(self, probe: PythonProbe, requirements: str, build_id: str,
                    blog: BuildLog) -> Path:
        """The requirements installed for the image's Python, built once per key."""
        key = deps_key(probe, requirements)
        final = self.deps_dir / f"{DEPS_PREFIX}{key}"
        if (final / "marker.json").is_file():
            blog.line(f"requirements already installed for python {probe.minor} "
                      f"({probe.platform()}): {final.name}; reusing them")
            return final
        tmp = self.deps_dir / f"{DEPS_PREFIX}{key}.tmp-{build_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "site-packages").mkdir(parents=True)
        (tmp / "bin").mkdir()
        try:
            if not requirements:
                blog.line("no requirements; nothing to install")
            else:
                if self.uv is None:
                    raise StepFailed("docker builds install requirements with uv, which the "
                                     "builder cannot find; set MODELPORT_BUILDER_UV")
                reqs = tmp / "requirements.txt"
                reqs.write_text(requirements + "\n")
                blog.line("requirements:")
                for line in requirements.splitlines():
                    blog.line(f"    {redact(line)}")
                extra = await self._index_env()
                if extra:
                    shown = " ".join(f"{k}={redact(v)}" for k, v in sorted(extra.items()))
                    blog.line(f"package index from the host's pip configuration: {shown}")
                env = self._environ | extra | {"UV_PYTHON_DOWNLOADS": "never",
                                               "UV_NO_PROGRESS": "1"}
                argv = [str(self.uv), "pip", "install", "--python", self.host_python,
                        "--target", str(tmp / "site-packages"), "--python-version",
                        probe.minor, "--python-platform", probe.platform(), "-r", str(reqs)]
                blog.line(f"$ {' '.join(argv)}")
                await blog.run("pip install", argv, env=env, cwd=self.deps_dir,
                               timeout_s=self.step_timeout_s)
                await asyncio.to_thread(_move_scripts, tmp)
            await asyncio.to_thread(_readable, tmp)  # public packages, read by the container
            (tmp / "marker.json").write_text(json.dumps({
                "key": key, "python": probe.version, "platform": probe.platform(),
                "requirements": requirements, "created": time.time(), "build_id": build_id}))
            if (final / "marker.json").is_file():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    async def _docker_build(self, client: Any, context: Path, tag: str,
                            blog: BuildLog, dockerfile: str | None = None) -> None:
        loop = asyncio.get_running_loop()

        def build() -> None:
            stream = client.api.build(path=str(context), tag=tag, rm=True,
                                      forcerm=True, pull=False, network_mode="none",
                                      decode=True, dockerfile=dockerfile)
            for msg in stream:
                if "error" in msg:
                    detail = msg.get("errorDetail", {}).get("message") or msg["error"]
                    raise RuntimeError(detail)
                text = str(msg.get("stream") or msg.get("status") or "").rstrip("\n")
                if text.strip():
                    loop.call_soon_threadsafe(blog.line, text)

        try:
            await asyncio.wait_for(in_own_thread(build, "docker-build"), self.step_timeout_s)
        except TimeoutError:
            raise StepFailed(f"docker build timed out after {self.step_timeout_s:g}s") from None
        except Exception as exc:
            reason = getattr(exc, "explanation", None) or str(exc)
            blog.line(f"docker build failed: {reason}")
            raise StepFailed(f"docker build failed: {reason}") from None


# ---------------------------------------------------------------------- helpers


def _image_id(client: Any, ref: str) -> str:
    import docker

    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound:
        return ""
    except docker.errors.APIError as exc:  # an unparsable reference
        log.info("looking up image %s failed: %s", ref, exc)
        return ""


def _tag(client: Any, image_id: str, tag: str) -> None:
    repository, _, name = tag.rpartition(":")
    client.images.get(image_id).tag(repository, name)


def _probe_from(data: dict[str, Any]) -> PythonProbe:
    libc = data.get("libc") or ["", ""]
    return PythonProbe(str(data["version"]), str(data["executable"]), str(data["machine"]),
                       (str(libc[0]), str(libc[1])))


def _move_scripts(deps: Path) -> None:
    """Console scripts uv put in ``site-packages/bin`` -> ``bin``, run by the image's venv."""
    scripts = deps / "site-packages" / "bin"
    if not scripts.is_dir():
        return
    python = f"{IMAGE_ROOT}/venv/bin/python".encode()
    for path in scripts.iterdir():
        target = deps / "bin" / path.name
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if data.startswith(b"#!") and b"python" in data.split(b"\n", 1)[0]:
                data = b"#!" + python + b"\n" + data.split(b"\n", 1)[1]
            target.write_bytes(data)
            target.chmod(0o755)
    shutil.rmtree(scripts, ignore_errors=True)


def _link_tree(src: Path, dst: Path) -> None:
    """Copy a tree as hard links where possible (same filesystem), else as copies; only for
    trees this builder owns (the dependencies), whose modes are already readable."""
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, symlinks=True, copy_function=link,
                    ignore=shutil.ignore_patterns("__pycache__"))


def _readable(root: Path) -> None:
    """Files readable (and dirs enterable) by anyone: the container runs as the host user
    while COPY makes root the owner."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        want = mode | stat.S_IRGRP | stat.S_IROTH
        if path.is_dir() or mode & stat.S_IXUSR:
            want |= stat.S_IXGRP | stat.S_IXOTH
        if want != mode:
            path.chmod(want)


def _assemble(context: Path, probe: PythonProbe, deps: Path, package_dir: Path,
              base_id: str, about: dict[str, Any]) -> None:
    shutil.rmtree(context, ignore_errors=True)
    opt = context / "opt"
    venv = opt / "venv"
    site = venv / "lib" / f"python{probe.minor}" / "site-packages"
    site.parent.mkdir(parents=True)
    _link_tree(deps / "site-packages", site)
    _link_tree(deps / "bin", venv / "bin")
    for name in ("python", "python3", f"python{probe.minor}"):
        with contextlib.suppress(FileExistsError):
            (venv / "bin" / name).symlink_to(probe.executable)
    (venv / "pyvenv.cfg").write_text(
        f"home = {os.path.dirname(probe.executable)}\ninclude-system-site-packages = false\n"
        f"version = {probe.version}\n")
    # the package is copied, never linked: making the copy readable must not loosen the
    # modes of the registry's own package files
    shutil.copytree(package_dir, opt / "package", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (opt / "image.json").write_text(json.dumps(about, indent=2) + "\n")
    _readable(opt)
    (context / "Dockerfile").write_text(dockerfile(base_id))
