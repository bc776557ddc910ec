"""Model code cannot reach the platform's secrets: who a process worker runs as, what it
may read, and how much it may use.

When the platform runs as root, each service's workers run as a user of their own (a
numeric uid from ``MODELPORT_RUNTIME_WORKER_ID_BASE``, never a login account), so a model
can neither read ``<home>`` (the registry database, tokens, other services' packages,
build logs, the internal sockets) nor signal, trace or read the environment of another
service's worker or of the platform. What a worker may read is granted path by path:

- ``<home>`` itself is 0711 (traversable, not listable); everything sensitive in it is
  0700/0600 (``secure_home``), and the platform creates files with umask 077;
- its package (``packages/<digest>``) belongs to a group of its own (one gid per package
  directory), mode 0750/0640, and the worker holds that group;
- environments (``envs/<key>``) and the worker shim are world-readable: they hold only
  public pip packages and modelport's own code;
- its replica directory is 0711; ``home/`` and ``tmp/`` in it belong to the worker;
  the socket to the runtime is the worker's, 0600.

Resource limits apply to process workers whoever runs them: ``RLIMIT_DATA`` from
``resources.memory`` (heap and anonymous mappings; not ``RLIMIT_AS``, which CUDA's address
reservations would break), open files and processes, which the worker shim sets on itself
before it loads any model code, with core dumps off and ``no_new_privs`` (``Launch``). A
worker that runs out of its memory is stopped and its replica restarts, with the reason
in the events (``EXIT_MEMORY_LIMIT``, ``modelport/worker/exit_codes.py``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from modelport.errors import Kind, ModelportError

log = logging.getLogger(__name__)

DEFAULT_ID_BASE = 100_000
DEFAULT_ID_COUNT = 50_000
#: fallback ids for user namespaces that map only the first 65536
SMALL_ID_BASE = 60_000
SMALL_ID_COUNT = 5_000
DEFAULT_OPEN_FILES = 4096
DEFAULT_PROCESSES = 1024
_UNITS = {"": 1, "K": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
          "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
#: directories in <home> a worker may traverse (not list), and the world-readable ones
TRAVERSE = ("packages", "runtime", "runtime/replicas")
PUBLIC = ("envs", "runtime/shim")
PRIVATE = ("blobs", "uploads", "builder", "logs")


def parse_memory(text: str) -> int:
    """``512Mi`` -> 536870912; "" -> 0 (no limit)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?\s*", text or "")
    if not m:
        return 0
    return int(float(m.group(1)) * _UNITS[m.group(2) or ""])


def contained_by_default() -> bool:
    """Workers get their own users when the platform can give them: when it runs as root."""
    return os.geteuid() == 0


# ---------------------------------------------------------------------- the home


def secure_home(root: Path, contained: bool | None = None) -> None:
    """Tighten ``<home>``: 0700 when workers run as the platform's own user; when they run
    as users of their own, 0711 with the sensitive parts 0700/0600 and what workers need
    reachable. Idempotent; called by ``modelport up`` on every start."""
    contained = contained_by_default() if contained is None else contained
    root.mkdir(parents=True, exist_ok=True)
    if not contained:
        os.chmod(root, 0o700)
        return
    os.chmod(root, 0o711)
    for private in PRIVATE:  # made here so that no component creates them readable
        (root / private).mkdir(mode=0o700, exist_ok=True)
    (root / "envs").mkdir(mode=0o755, exist_ok=True)
    for child in root.iterdir():
        rel = child.relative_to(root).as_posix()
        if child.is_symlink():
            continue
        if rel in TRAVERSE:
            os.chmod(child, 0o711)
        elif rel in PUBLIC:
            os.chmod(child, 0o755)
        elif child.is_dir():
            os.chmod(child, 0o700)
        else:
            os.chmod(child, 0o600)
    for rel in TRAVERSE:
        (root / rel).mkdir(parents=True, exist_ok=True)
        os.chmod(root / rel, 0o711)
    for rel in PUBLIC:
        if (root / rel).is_dir():
            os.chmod(root / rel, 0o755)
    ensure_traversable(root / "packages")


def ensure_traversable(path: Path) -> list[Path]:
    """Give others search (x, never r) on each ancestor of ``path`` that lacks it, so a
    worker user can reach what it is granted below; returns the directories changed."""
    changed: list[Path] = []
    dirs = [*Path(os.path.abspath(path)).parents, *Path(os.path.realpath(path)).parents]
    for parent in sorted(set(dirs), key=lambda d: len(d.parts)):
        if parent in changed:
            continue
        try:
            mode = os.stat(parent).st_mode
        except OSError:
            continue
        if not mode & stat.S_IXOTH:
            os.chmod(parent, stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append(parent)
    if changed:
        log.warning("made %s traversable by other users (o+x, not readable) so that "
                    "model workers can reach %s", ", ".join(map(str, changed)), path)
    return changed


def _grant_tree(top: Path, gid: int) -> None:
    """Owner root, group ``gid`` reads (and searches), others nothing."""
    for dirpath, _, filenames in os.walk(top):
        os.chown(dirpath, 0, gid)
        os.chmod(dirpath, 0o750)
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                continue
            os.chown(p, 0, gid)
            mode = stat.S_IMODE(st.st_mode) & 0o700 | 0o400
            os.chmod(p, mode | (0o050 if mode & 0o100 else 0o040))


def _public_tree(top: Path) -> None:
    """Readable (and searchable) by everyone, writable by its owner only."""
    for dirpath, _, filenames in os.walk(top):
        os.chmod(dirpath, stat.S_IMODE(os.stat(dirpath).st_mode) & 0o755 | 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode):
                mode = stat.S_IMODE(st.st_mode) & 0o755 | 0o444
                os.chmod(p, mode | (0o011 if mode & 0o100 else 0))


# ---------------------------------------------------------------------- ids


def _mapped(path: str, first: int, count: int) -> bool:
    try:
        with open(path) as f:
            rows = [tuple(map(int, line.split())) for line in f if line.strip()]
    except OSError:
        return True
    return any(inner <= first and first + count <= inner + length
               for inner, _, length in rows)


def _pick_range() -> tuple[int, int]:
    for base, count in ((DEFAULT_ID_BASE, DEFAULT_ID_COUNT), (SMALL_ID_BASE, SMALL_ID_COUNT)):
        if _mapped("/proc/self/uid_map", base, count) and _mapped("/proc/self/gid_map", base,
                                                                  count):
            return base, count
    raise ModelportError(Kind.UNAVAILABLE, "runtime.no_worker_ids",
                         "this user namespace maps no range of ids for model workers",
                         "set MODELPORT_RUNTIME_WORKER_ID_BASE/_COUNT to a mapped range, or "
                         "MODELPORT_RUNTIME_CONTAIN=off to run models as the platform's user")


class IdPool:
    """Stable numeric ids for keys (``service:NAME``, ``package:DIR``), kept in a file so
    an id never goes to another key: a gid granted on a package stays that package's."""

    def __init__(self, path: Path, base: int = 0, count: int = 0) -> None:
        self.path = path
        if not base:
            base, count = _pick_range()
        self.base, self.count = base, count or DEFAULT_ID_COUNT
        try:
            self._ids: dict[str, int] = json.loads(path.read_text())
        except (OSError, ValueError):
            self._ids = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> int:
        with self._lock:  # workers are prepared in threads: one id per key, one key per id
            return self._get(key)

    def _get(self, key: str) -> int:
        if key in self._ids:
            return self._ids[key]
        used = set(self._ids.values())
        for candidate in range(self.base + len(self._ids), self.base + self.count):
            if candidate not in used and not _known_id(candidate):
                break
        else:
            raise ModelportError(Kind.UNAVAILABLE, "runtime.worker_ids_exhausted",
                                 f"all {self.count} worker ids are in use",
                                 "raise MODELPORT_RUNTIME_WORKER_ID_COUNT")
        self._ids[key] = candidate
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self._ids, f)
        os.replace(tmp, self.path)
        return candidate


_POOLS: dict[str, IdPool] = {}
_POOLS_LOCK = threading.Lock()


def id_pool(work_dir: Path, base: int = 0, count: int = 0) -> IdPool:
    """The runtime's one pool (``<work_dir>/worker-ids.json``), shared by its backends so
    a service's process and container workers get the same id and no id two keys."""
    key = str(Path(work_dir).resolve())
    with _POOLS_LOCK:
        if key not in _POOLS:
            _POOLS[key] = IdPool(Path(work_dir) / "worker-ids.json", base, count)
        return _POOLS[key]


def container_user(work_dir: Path, service: str) -> tuple[int, int] | None:
    """(uid, gid) a Docker worker of ``service`` runs as when the runtime is root (the
    same id its process workers get); None: the runtime's own user, which is not root."""
    if os.getuid() != 0:
        return None
    uid = id_pool(work_dir).get(f"service:{service}")
    return uid, uid


def _known_id(n: int) -> bool:
    """An id some account or group on this host already has."""
    import grp
    import pwd

    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(n)
            return True
        except KeyError:
            pass
    return False


# ---------------------------------------------------------------------- a worker


#: run by the runtime's own interpreter (isolated, no site): become the worker's user,
#: then exec the worker. Dropping privileges here rather than with Popen(user=...) keeps
#: the spawn a vfork: a plain fork would run gRPC's fork handlers in the child (SIGABRT).
_BECOME = ("import os, sys; uid, gid = int(sys.argv[1]), int(sys.argv[2]); "
           "os.setgroups([int(g) for g in sys.argv[3].split(',') if g]); "
           "os.setgid(gid); os.setuid(uid); os.execv(sys.argv[4], sys.argv[4:])")


@dataclass
class Launch:
    """How to start one worker: its command line and extra environment.

    The limits travel as environment (``MODELPORT_MEMORY_LIMIT``, ``MODELPORT_MAX_OPEN_FILES``,
    ``MODELPORT_MAX_PROCESSES``, ``MODELPORT_NO_NEW_PRIVS``): the worker shim applies them
    to itself first thing, before it loads any model code. Lowering one's own limits needs
    no privilege, and once lowered an unprivileged worker cannot raise them again;
    setting them from outside (prlimit) needs CAP_SYS_RESOURCE, which containers lack.
    """

    env: dict[str, str] = field(default_factory=dict)
    user: int | None = None
    group: int | None = None
    extra_groups: list[int] = field(default_factory=list)

    def argv(self, argv: list[str]) -> list[str]:
        if self.user is None:
            return argv
        return [sys.executable, "-I", "-S", "-c", _BECOME, str(self.user), str(self.group),
                ",".join(map(str, self.extra_groups)), *argv]


def reachable(path: Path) -> bool:
    """Whether a user other than the owner can reach (search every ancestor of) ``path``."""
    real = Path(os.path.realpath(path))
    for parent in real.parents:
        try:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


class Containment:
    """One per runtime: prepares each process worker's user, grants and limits."""

    def __init__(self, work_dir: Path, *, enabled: bool | None = None, id_base: int = 0,
                 id_count: int = 0, open_files: int = DEFAULT_OPEN_FILES,
                 processes: int = DEFAULT_PROCESSES) -> None:
        self.work_dir = Path(work_dir)
        self.home = self.work_dir.parent
        self.enabled = contained_by_default() if enabled is None else enabled
        self.open_files = open_files
        self.processes = processes
        self._id_base, self._id_count = id_base, id_count
        self._pool: IdPool | None = None
        self._granted: set[tuple[str, int]] = set()
        self._public: set[str] = set()

    @property
    def pool(self) -> IdPool:
        if self._pool is None:
            self._pool = id_pool(self.work_dir, self._id_base, self._id_count)
        return self._pool

    def prepare(self, service: str, python: str, package_dir: Path, shim_root: Path,
                replica_dir: Path, socket: Path, memory: str = "") -> Launch:
        """Grant the worker what it needs and say how to start it (call before spawning)."""
        memory_bytes = parse_memory(memory)
        launch = Launch()
        if memory_bytes:
            launch.env["MODELPORT_MEMORY_LIMIT"] = str(memory_bytes)
        if self.open_files:
            launch.env["MODELPORT_MAX_OPEN_FILES"] = str(self.open_files)
        if self.processes and self.enabled:  # RLIMIT_NPROC counts every process of a uid
            launch.env["MODELPORT_MAX_PROCESSES"] = str(self.processes)
        if not self.enabled:
            return launch
        uid = self.pool.get(f"service:{service}")
        package = Path(os.path.realpath(package_dir))
        pkg_gid = self.pool.get(f"package:{package}")
        packages = Path(os.path.realpath(self.home / "packages"))
        if packages in package.parents and (str(package), pkg_gid) not in self._granted:
            _grant_tree(package, pkg_gid)
            self._granted.add((str(package), pkg_gid))
        envs = Path(os.path.realpath(self.home / "envs"))
        venv = Path(os.path.realpath(Path(python).parent.parent))
        for public in (Path(os.path.realpath(shim_root)), venv):
            if (public == venv and envs not in venv.parents) or str(public) in self._public:
                continue  # only what the platform made: never a user's own interpreter
            if public.is_dir():
                _public_tree(public)
                self._public.add(str(public))
        for path in (package, Path(python), shim_root, replica_dir):
            ensure_traversable(path)
        real = os.path.realpath(python)
        if not (os.path.exists(real) and os.stat(real).st_mode & stat.S_IXOTH
                and reachable(Path(python))):
            raise ModelportError(Kind.UNAVAILABLE, "replica.python_unreachable",
                                 f"the model's worker user cannot run {python}",
                                 "install Python where other users can read it")
        os.chmod(replica_dir, 0o711)
        for sub in ("home", "tmp"):
            d = replica_dir / sub
            d.mkdir(exist_ok=True)
            for dirpath, _, filenames in os.walk(d):
                os.chown(dirpath, uid, uid)
                for name in filenames:
                    os.lchown(os.path.join(dirpath, name), uid, uid)
            os.chmod(d, 0o700)
        if socket.parent != replica_dir:
            os.chmod(socket.parent, 0o711)
        os.chown(socket, uid, uid)
        os.chmod(socket, 0o600)
        launch.user, launch.group, launch.extra_groups = uid, uid, [pkg_gid]
        launch.env.update(USER="modelport-worker", LOGNAME="modelport-worker",
                          MODELPORT_NO_NEW_PRIVS="1")
        return launch
