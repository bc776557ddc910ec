"""Where desired state comes from: one branch of a git repository, read at a commit.

Committed state is read from git's object store (`ls-tree`, `cat-file`, `archive`), never
from the work tree, so a half-edited file cannot reach the platform. `--worktree` mode
reads the files on disk instead (local development). A remote repository is fetched into
a bare cache repository and read the same way.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from modelport.errors import invalid

YAML_SUFFIXES = (".yaml", ".yml")


class GitError(RuntimeError):
    pass


def git(cwd: Path, *args: str, input: bytes | None = None) -> bytes:
    """Run git; its stderr becomes the error message."""
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                          env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"})
    if proc.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


@dataclass(frozen=True)
class Entry:
    kind: str  # blob | tree
    oid: str
    executable: bool = False


@dataclass
class Snapshot:
    """Desired state at one revision: the YAML files under the source path, and access to
    any path of the same revision (packages are read from the same commit)."""

    source: GitSource
    commit: str  # sha of the branch head; `<sha>+worktree` when uncommitted files are applied
    head: str
    worktree: bool
    uncommitted: list[str] = field(default_factory=list)
    _entries: dict[str, Entry] = field(default_factory=dict)
    _absent: set[str] = field(default_factory=set)

    def yaml_files(self) -> dict[str, Entry]:
        """Repository-relative path -> entry for every *.yaml / *.yml under the source path."""
        return {p: e for p, e in self._entries.items()
                if e.kind == "blob" and p.endswith(YAML_SUFFIXES)}

    def read(self, path: str) -> bytes:
        if self.worktree:
            return (self.source.root / path).read_bytes()
        return self.source.cat_blobs([self._entries[path].oid])[self._entries[path].oid]

    def entry(self, path: str) -> Entry | None:
        """What `path` is at this revision (None: absent). Worktree entries carry no oid."""
        if self.worktree:
            p = self.source.root / path
            if p.is_dir():
                return Entry("tree", "")
            return Entry("blob", "") if p.is_file() else None
        if path not in self._entries and path not in self._absent:
            self.prefetch([path])
        return self._entries.get(path)

    def prefetch(self, paths: list[str]) -> None:
        """Look up many paths with one `git ls-tree` (packages of 200 services: one process)."""
        wanted = [p for p in dict.fromkeys(paths) if p and p not in self._entries
                  and p not in self._absent]
        if self.worktree or not wanted:
            return
        out = git(self.source.git_cwd, "ls-tree", "-z", "--full-tree", self.head, "--",
                  *wanted)
        for rec in out.split(b"\0"):
            if rec:
                meta, _, name = rec.decode().partition("\t")
                mode, kind, oid = meta.split()
                self._entries[name] = Entry(kind, oid, mode == "100755")
        self._absent.update(p for p in wanted if p not in self._entries)

    def export(self, path: str, dest: Path) -> None:
        """Write the directory or file `path` of this revision to `dest` (a new directory,
        or a file path for a blob)."""
        if self.worktree:
            src = self.source.root / path
            if src.is_dir():
                shutil.copytree(src, dest, symlinks=False,
                                ignore=shutil.ignore_patterns(".git", "__pycache__"))
            else:
                shutil.copyfile(src, dest)
            return
        entry = self.entry(path)
        if entry is None:
            raise FileNotFoundError(path)
        if entry.kind == "blob":
            dest.write_bytes(self.source.cat_blobs([entry.oid])[entry.oid])
            return
        data = git(self.source.git_cwd, "archive", "--format=tar", entry.oid)
        dest.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")


@dataclass(kw_only=True, eq=False)
class GitSource:
    """A tracked branch of a local work tree, or of a remote repository fetched into a cache.

    `subpath` is the directory inside the repository holding the service YAML.
    """

    git_dir: Path
    subpath: str
    branch: str
    repo: str
    root: Path | None = None  # work tree root; None for a remote (bare) source
    remote_url: str = ""
    worktree: bool = False
    _blobs: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)

    # construction ---------------------------------------------------------------------
    @classmethod
    def local(cls, path: Path, branch: str = "", worktree: bool = False) -> GitSource:
        path = Path(path).resolve()
        if not path.is_dir():
            raise invalid("gitops.path_missing", f"{path} is not a directory",
                          "pass the directory (inside a git work tree) that holds the YAML")
        try:
            root = Path(git(path, "rev-parse", "--show-toplevel").decode().strip())
            common = git(path, "rev-parse", "--git-common-dir").decode().strip()
        except GitError:
            raise invalid("gitops.not_a_repo", f"{path} is not inside a git work tree",
                          "run `git init` and commit the YAML, or pass --repo URL") from None
        git_dir = (path / common).resolve()
        if not branch:
            try:
                branch = git(root, "symbolic-ref", "--short", "HEAD").decode().strip()
            except GitError:
                raise invalid("gitops.detached_head", f"{root} has a detached HEAD",
                              "check out a branch or pass --branch") from None
        sub = path.relative_to(root.resolve()).as_posix()
        return cls(root=root, git_dir=git_dir, subpath="" if sub == "." else sub,
                   branch=branch, repo=str(root), worktree=worktree)

    @classmethod
    def remote(cls, url: str, branch: str, cache: Path, subpath: str = "") -> GitSource:
        """A bare cache clone under `cache`, named by the URL, fetched on every refresh."""
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        git_dir = Path(cache) / f"{key}.git"
        if not (git_dir / "HEAD").exists():
            git_dir.mkdir(parents=True, exist_ok=True)
            git(git_dir, "init", "--bare", "-q")
        src = cls(git_dir=git_dir, subpath=subpath.strip("/"), branch=branch or "main",
                  repo=url, remote_url=url)
        return src

    # identity -------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return f"{self.repo}#{self.branch}:{self.subpath or '.'}"

    @property
    def git_cwd(self) -> Path:
        return self.root if self.root is not None else self.git_dir

    def watch_paths(self) -> list[tuple[Path, bool]]:
        """(directory, recursive) pairs whose changes may mean a new commit or a saved file."""
        if self.root is None:
            return []
        paths = [(self.git_dir, False), (self.git_dir / "refs" / "heads", True),
                 (self.root / self.subpath if self.subpath else self.root, True)]
        return [(p, r) for p, r in paths if p.is_dir()]

    # reading --------------------------------------------------------------------------
    def refresh(self) -> None:
        """Fetch the tracked branch of a remote; nothing for a local work tree."""
        if self.remote_url:
            git(self.git_dir, "fetch", "-q", "--prune", "--no-tags", self.remote_url,
                f"+refs/heads/{self.branch}:refs/heads/{self.branch}")

    def head(self) -> str:
        try:
            return git(self.git_cwd, "rev-parse", "--verify", "-q",
                       f"refs/heads/{self.branch}^{{commit}}").decode().strip()
        except GitError:
            raise invalid("gitops.branch_missing", f"branch {self.branch!r} has no commits in "
                          f"{self.repo}", "commit to the branch, or pass --branch") from None

    def uncommitted(self) -> list[str]:
        """Files under the path whose work tree content differs from the last commit."""
        if self.root is None:
            return []
        out = git(self.root, "status", "--porcelain=v1", "-z", "-uall", "--",
                  self.subpath or ".")
        files = []
        recs = out.split(b"\0")
        i = 0
        while i < len(recs):
            rec = recs[i].decode(errors="replace")
            if len(rec) > 3:
                files.append(rec[3:])
                if rec[0] in "RC":  # a rename carries its old name in the next record
                    i += 1
            i += 1
        return sorted(files)

    def snapshot(self) -> Snapshot:
        self.refresh()
        head = self.head()
        uncommitted = self.uncommitted()
        if self.worktree:
            assert self.root is not None
            base = self.root / self.subpath if self.subpath else self.root
            entries = {}
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = sorted(d for d in dirnames if d != ".git")
                for f in filenames:
                    rel = Path(dirpath, f).relative_to(self.root).as_posix()
                    entries[rel] = Entry("blob", "")
            dirty = any(f.startswith(self.subpath) for f in uncommitted)
            return Snapshot(self, f"{head}+worktree" if dirty else head, head, True,
                            uncommitted, entries)
        entries = {}
        args = ["ls-tree", "-r", "-z", "--full-tree", head]
        if self.subpath:
            args += ["--", self.subpath]
        for rec in git(self.git_cwd, *args).split(b"\0"):
            if rec:
                meta, _, name = rec.decode().partition("\t")
                mode, kind, oid = meta.split()
                entries[name] = Entry(kind, oid, mode == "100755")
        return Snapshot(self, head, head, False, uncommitted, entries)

    def cat_blobs(self, oids: list[str]) -> dict[str, bytes]:
        """Contents of many blobs with one `git cat-file --batch` (cached: blobs are immutable)."""
        missing = [o for o in dict.fromkeys(oids) if o not in self._blobs]
        if missing:
            out = git(self.git_cwd, "cat-file", "--batch", input="\n".join(missing).encode()
                      + b"\n")
            pos = 0
            for oid in missing:
                nl = out.index(b"\n", pos)
                header = out[pos:nl].decode().split()
                size = int(header[2])
                self._blobs[oid] = out[nl + 1: nl + 1 + size]
                pos = nl + 1 + size + 1
            if len(self._blobs) > 4096:  # bound the cache; YAML blobs are what repeats
                for oid in list(self._blobs)[: len(self._blobs) - 2048]:
                    if oid not in missing:
                        del self._blobs[oid]
        return {o: self._blobs[o] for o in oids}


def resolve_relative(yaml_file: str, ref: str) -> str:
    """A path written in a YAML file (relative to that file) as a repository path."""
    if ref.startswith("/") or ref.startswith("\\"):
        raise invalid("gitops.package_absolute", f"spec.package {ref!r} is an absolute path",
                      "write the package path relative to the YAML file, inside the repository")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(yaml_file), ref))
    if joined == ".." or joined.startswith("../"):
        raise invalid("gitops.package_outside", f"spec.package {ref!r} points outside the "
                      "repository", "keep the package directory or zip inside the same repository")
    return "" if joined == "." else joined
