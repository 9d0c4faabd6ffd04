"""Kernel-enforced memory limits: one memory cgroup per child, where the kernel lets us.

Which mechanism applies is decided once, from this process's own cgroup (``detect``):

- **cgroup v2**: our cgroup has the memory controller available (``cgroup.controllers``),
  is writable and holds only our own process tree: systemd's ``Delegate=memory`` gives a
  service exactly that. The "no internal processes" rule forbids a cgroup that hands
  controllers to children from holding processes itself, so before the first child the
  daemon moves its processes into a leaf of its own (``roomd-supervisor``) and enables
  ``+memory`` for the children.
- **cgroup v1**: the memory hierarchy is mounted and our memory cgroup is writable; sub-cgroups
  need no preparation.
- **none**: neither (a read-only or absent hierarchy, a v2 cgroup without the memory
  controller or shared with other programs). The supervisor's sampling is the only limit.

Each child gets ``roomd-child-<pid>`` under that base with the job's limit
(``memory.max`` / ``memory.limit_in_bytes``) and swap off for it; what the child forks stays
in it (setsid does not leave a cgroup), so the limit covers the whole tree the job starts.
The two flavours differ only in file names and a few values: ``Flavour``, not if-chains.
Parsing is pure (``find_bases`` takes the text of /proc/self/cgroup and mountinfo).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import signal
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil
import structlog

log = structlog.get_logger("roomd.pool")

CHILD_PREFIX = "roomd-child-"
# v2 only: where the supervisor (and its zygotes) live once the base hands memory to children.
SUPERVISOR_LEAF = "roomd-supervisor"
MB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Flavour:
    """The file names (and values) one cgroup version uses for the same thing."""

    name: str
    limit: str  # the hard limit, in bytes
    swap_limit: str  # absent without swap accounting
    no_swap: Callable[[int], str]  # the swap file's value that keeps the child out of swap
    usage: str
    peak: str  # absent before Linux 5.19 on v2
    events: str  # "key value" lines; both count the kernel's kills as ``oom_kill``
    group_kill: str  # v2: one OOM kill ends the whole cgroup
    kill: str  # v2 (5.14+): SIGKILL everything in the cgroup in one write


V1 = Flavour(name="cgroup v1", limit="memory.limit_in_bytes", swap_limit="memory.memsw.limit_in_bytes",
             no_swap=str,  # memory+swap capped at the memory limit: no room for swap
             usage="memory.usage_in_bytes", peak="memory.max_usage_in_bytes",
             events="memory.oom_control", group_kill="", kill="")
V2 = Flavour(name="cgroup v2", limit="memory.max", swap_limit="memory.swap.max", no_swap=lambda _limit: "0",
             usage="memory.current", peak="memory.peak", events="memory.events",
             group_kill="memory.oom.group", kill="cgroup.kill")


@dataclasses.dataclass(frozen=True)
class Base:
    """Our own cgroup in one hierarchy: where children's cgroups would be made."""

    flavour: Flavour
    path: Path


def find_bases(proc_cgroup: str, mountinfo: str) -> list[Base]:
    """Our cgroup in the v2 hierarchy and in the v1 memory hierarchy, where mounted (v2
    first). Pure: ``proc_cgroup`` is /proc/self/cgroup, ``mountinfo`` /proc/self/mountinfo."""
    v2_path: str | None = None
    v1_path: str | None = None
    for line in proc_cgroup.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    bases: list[Base] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        if len(after) < 3:
            continue
        fstype, superoptions = after[0], after[2].split(",")
        root, mount_point = unescape(fields[3]), unescape(fields[4])
        if fstype == "cgroup2" and v2_path is not None:
            flavour, path = V2, v2_path
        elif fstype == "cgroup" and "memory" in superoptions and v1_path is not None:
            flavour, path = V1, v1_path
        else:
            continue
        inside = _below(path, root)
        if inside is not None:
            bases.append(Base(flavour, Path(mount_point, inside)))
    bases.sort(key=lambda base: base.flavour is not V2)
    return bases


def unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def _below(path: str, root: str) -> str | None:
    """``path`` relative to a mount whose root is ``root``; None when the mount does not show it."""
    if root == "/":
        return path.lstrip("/")
    if path == root or path.startswith(root.rstrip("/") + "/"):
        return path[len(root):].lstrip("/")
    return None


@dataclasses.dataclass(frozen=True)
class Mechanism:
    """What enforces memory limits in this process, and why (for the startup log)."""

    base: Base | None  # None: sampling only
    why: str

    @property
    def name(self) -> str:
        return self.base.flavour.name if self.base is not None else "sampling"


def choose(bases: Iterable[Base], own_tree: Callable[[], set[int]]) -> Mechanism:
    """The first base the kernel lets us use; the reasons the others were passed over."""
    passed: list[str] = []
    for base in bases:
        problem = usable(base, own_tree)
        if problem is None:
            return Mechanism(base, f"{base.path} is writable")
        passed.append(f"{base.flavour.name}: {problem}")
    return Mechanism(None, "; ".join(passed) or "no cgroup hierarchy with the memory controller is mounted")


def usable(base: Base, own_tree: Callable[[], set[int]]) -> str | None:
    """None if children's memory cgroups can be made under ``base``, else why not."""
    directory = base.path
    files: tuple[Path, ...] = (directory,)
    if base.flavour is V2:
        directory = service_cgroup(directory)  # we may be in the leaf since an earlier start
        controllers = _read(directory / "cgroup.controllers")
        if controllers is None:
            return f"{directory} is not readable"
        if "memory" not in controllers.split():
            return (f"the memory controller is not available in {directory} (not delegated, or bound "
                    f"to a cgroup v1 hierarchy)")
        foreign = _pids(directory) - own_tree()
        if foreign:
            return f"{directory} also holds other programs (pids {sorted(foreign)[:5]}); delegate one to roomd"
        files = (directory, directory / "cgroup.procs", directory / "cgroup.subtree_control")
    for path in files:
        if not os.access(path, os.W_OK):
            return f"{path} is not writable"
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_bytes(path: Path) -> int | None:
    text = _read(path)
    return int(text) if text and text.strip().isdigit() else None


def _pids(directory: Path) -> set[int]:
    """The processes in a cgroup (its ``cgroup.procs``); none if unreadable."""
    return {int(p) for p in (_read(directory / "cgroup.procs") or "").split()}


def service_cgroup(path: Path) -> Path:
    """The cgroup of the service: ``path``, or its parent when ``path`` is the leaf the
    supervisor moved itself into on v2 (its children's cgroups are the leaf's siblings)."""
    return path.parent if path.name == SUPERVISOR_LEAF else path


def counter(text: str | None, key: str) -> int:
    """The value of ``key`` in "key value" lines (memory.events, memory.oom_control); 0 if absent."""
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            with contextlib.suppress(ValueError):
                return int(value)
    return 0


class CgroupError(OSError):
    """A child's memory cgroup could not be made or joined: it falls back to sampling."""


@dataclasses.dataclass
class ChildCgroup:
    """One child's memory cgroup: its limit, what the kernel counted, and its removal."""

    flavour: Flavour
    path: Path
    limit_bytes: int

    def usage(self) -> int | None:
        return _read_bytes(self.path / self.flavour.usage)

    def peak(self) -> int | None:
        return _read_bytes(self.path / self.flavour.peak)

    def oom_kills(self) -> int:
        """The kernel's count of out-of-memory kills in this cgroup: non-zero once it enforced the
        limit. Not a count of processes: with ``memory.oom.group`` a v2 kernel counts the victim
        twice (seen on Linux 6.1)."""
        return counter(_read(self.path / self.flavour.events), "oom_kill")

    def members(self) -> set[int]:
        return _pids(self.path)

    def describe_kill(self) -> str:
        peak = self.peak()
        return (f"memory limit reached: the kernel ended the job at its {self.limit_bytes / MB:.0f} MB limit "
                f"({self.flavour.name}" + (f", peak {peak / MB:.0f} MB" if peak is not None else "") + ")")

    async def remove(self, timeout: float = 2.0) -> None:
        """SIGKILL what is still inside (a helper that left the process group), wait until the
        cgroup is empty, remove it. ``CgroupError`` if it is still busy after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            members = self.members()
            if members:
                self._kill(members)
            else:
                try:
                    os.rmdir(self.path)
                    return
                except FileNotFoundError:
                    return
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise CgroupError(exc.errno, f"cannot remove {self.path}: {exc.strerror}") from None
            if loop.time() >= deadline:
                raise CgroupError(errno.EBUSY, f"{self.path} still holds pids {sorted(members)[:5]}")
            await asyncio.sleep(0.02)

    def _kill(self, members: set[int]) -> None:
        if self.flavour.kill and (self.path / self.flavour.kill).exists():
            with contextlib.suppress(OSError):
                (self.path / self.flavour.kill).write_text("1")
                return
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


class MemoryCgroups:
    """The daemon's memory cgroups: decides the mechanism once, makes one cgroup per child."""

    def __init__(self, mechanism: Mechanism) -> None:
        self.mechanism = mechanism
        self._prepared = False

    @classmethod
    def detect(cls) -> MemoryCgroups:
        """Read our own cgroup and the mount table; change nothing yet."""
        try:
            proc_cgroup = Path("/proc/self/cgroup").read_text()
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError as exc:
            return cls(Mechanism(None, f"cannot read our cgroup: {exc}"))
        return cls(choose(find_bases(proc_cgroup, mountinfo), own_process_tree))

    @property
    def enforced(self) -> bool:
        return self.mechanism.base is not None

    def describe(self, *, use: bool, sampling: str) -> str:
        """What holds a job to its memory limit (where one is set), in one line for the startup
        log. ``use``: ``[pool] memory_cgroups`` is "auto"; ``sampling``: how often the sampler looks."""
        if not use:
            return f"sampling {sampling} (memory_cgroups = \"off\")"
        if self.mechanism.base is None:
            return f"sampling {sampling} ({self.mechanism.why})"
        return f"{self.mechanism.name} (kernel-enforced), with sampling {sampling} as a second guard"

    def attach(self, pid: int, limit_bytes: int) -> ChildCgroup:
        """Give ``pid`` a cgroup of its own limited to ``limit_bytes``; ``CgroupError`` if not."""
        base = self.mechanism.base
        if base is None:
            raise CgroupError(errno.ENOTSUP, f"no memory cgroup here: {self.mechanism.why}")
        flavour = base.flavour
        directory = self._base_directory(base)
        path = directory / f"{CHILD_PREFIX}{pid}"
        try:
            self._prepare(flavour, directory)
            try:
                path.mkdir()
            except FileExistsError:
                path.rmdir()  # left by a daemon that died; busy (EBUSY) if anything still runs in it
                path.mkdir()
            cgroup = ChildCgroup(flavour, path, limit_bytes)
            (path / flavour.limit).write_text(str(limit_bytes))
            if (path / flavour.swap_limit).exists():
                (path / flavour.swap_limit).write_text(flavour.no_swap(limit_bytes))
            if flavour.group_kill and (path / flavour.group_kill).exists():
                (path / flavour.group_kill).write_text("1")
            (path / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            with contextlib.suppress(OSError):
                path.rmdir()
            raise CgroupError(exc.errno, f"cannot give child {pid} a memory cgroup in {directory}: "
                                         f"{exc.strerror or exc}") from None
        return cgroup

    def _base_directory(self, base: Base) -> Path:
        return service_cgroup(base.path) if base.flavour is V2 else base.path

    def _prepare(self, flavour: Flavour, directory: Path) -> None:
        """Once: remove empty cgroups an earlier daemon left; on v2, move our processes into a
        leaf and hand the memory controller to children (the "no internal processes" rule)."""
        if self._prepared:
            return
        for stale in directory.glob(f"{CHILD_PREFIX}*"):
            pid = stale.name.removeprefix(CHILD_PREFIX)
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                with contextlib.suppress(OSError):
                    stale.rmdir()
        if flavour is V2 and "memory" not in (_read(directory / "cgroup.subtree_control") or "").split():
            leaf = directory / SUPERVISOR_LEAF
            leaf.mkdir(exist_ok=True)
            # Processes may fork meanwhile (a zygote): move until the base is empty.
            for _attempt in range(10):
                for member in _pids(directory):
                    with contextlib.suppress(ProcessLookupError):
                        (leaf / "cgroup.procs").write_text(str(member))
                try:
                    (directory / "cgroup.subtree_control").write_text("+memory")
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        raise
            else:
                raise CgroupError(errno.EBUSY, f"{directory} keeps gaining processes; cannot enable +memory")
            log.info("moved the supervisor into a leaf cgroup; children get memory cgroups",
                     leaf=str(leaf), base=str(directory))
        self._prepared = True


def own_process_tree() -> set[int]:
    """This process and its descendants (the subreaper makes children of every zygote fork ours)."""
    try:
        me = psutil.Process()
        return {me.pid, *(child.pid for child in me.children(recursive=True))}
    except psutil.Error:
        return {os.getpid()}
