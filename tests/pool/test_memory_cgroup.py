"""Which memory cgroup a daemon would use, from its /proc/self/cgroup and mount table (pure
inputs), the v2 layout it makes (on a stand-in directory tree), and, where this machine's
kernel offers one, a real child's cgroup: the kernel's kill at the limit and the removal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from roomd.daemon.pool.memory_cgroup import (
    CHILD_PREFIX,
    MB,
    SUPERVISOR_LEAF,
    V1,
    V2,
    Base,
    MemoryCgroups,
    choose,
    counter,
    find_bases,
)

HYBRID_CGROUP = """\
9:name=systemd:/
4:memory:/process_api/f964ae75
1:cpu:/
0::/
"""
HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED_CGROUP = "0::/system.slice/roomd.service\n"
UNIFIED_MOUNTS = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"


@pytest.mark.parametrize(("proc_cgroup", "mountinfo", "expected"), [
    pytest.param(HYBRID_CGROUP, HYBRID_MOUNTS,
                 [(V2, "/sys/fs/cgroup/unified"), (V1, "/sys/fs/cgroup/memory/process_api/f964ae75")],
                 id="hybrid: v2 first, then the v1 memory hierarchy"),
    pytest.param(UNIFIED_CGROUP, UNIFIED_MOUNTS, [(V2, "/sys/fs/cgroup/system.slice/roomd.service")],
                 id="systemd unit on pure v2"),
    pytest.param("0::/system.slice/roomd.service/roomd-supervisor\n", UNIFIED_MOUNTS,
                 [(V2, "/sys/fs/cgroup/system.slice/roomd.service/roomd-supervisor")],
                 id="already moved into our leaf"),
    pytest.param("5:memory,cpu:/docker/abc\n",
                 "40 31 0:37 /docker/abc /sys/fs/cgroup/memory ro,relatime - cgroup cgroup rw,memory,cpu\n",
                 [(V1, "/sys/fs/cgroup/memory")], id="container: the mount's root is our cgroup"),
    pytest.param("5:memory:/elsewhere\n",
                 "40 31 0:37 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
                 [], id="our cgroup is not visible under the mount"),
    pytest.param("4:memory:/a b\n", "35 31 0:32 / /mnt/c\\040g rw - cgroup cgroup rw,memory\n",
                 [(V1, "/mnt/c g/a b")], id="escaped mount point"),
    pytest.param("1:cpu:/\n0::/\n", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", [],
                 id="no memory hierarchy, no cgroup2"),
    pytest.param("", "", [], id="nothing readable"),
])
def test_finds_our_cgroup_in_each_hierarchy(proc_cgroup: str, mountinfo: str,
                                            expected: list[tuple[object, str]]) -> None:
    assert [(b.flavour, str(b.path)) for b in find_bases(proc_cgroup, mountinfo)] == expected


def fake_v2(root: Path, controllers: str = "cpu memory pids", procs: str = "") -> Path:
    """A directory laid out like a delegated cgroup v2 (only the files detection reads)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cgroup.procs").write_text(procs)
    (root / "cgroup.subtree_control").write_text("")
    return root


def test_a_delegated_v2_cgroup_holding_only_us_is_used(tmp_path: Path) -> None:
    base = fake_v2(tmp_path / "roomd.service", procs=f"{os.getpid()}\n")
    mechanism = choose([Base(V2, base)], lambda: {os.getpid()})
    assert mechanism.base == Base(V2, base) and mechanism.name == "cgroup v2"


@pytest.mark.parametrize(("controllers", "procs", "why"), [
    ("cpu pids", "", "the memory controller is not available"),
    ("cpu memory", "1\n", "also holds other programs (pids [1])"),
])
def test_a_v2_cgroup_we_cannot_use_falls_back_to_v1_then_sampling(
        tmp_path: Path, controllers: str, procs: str, why: str) -> None:
    v2 = fake_v2(tmp_path / "unified", controllers, procs)
    v1 = tmp_path / "memory"
    v1.mkdir()
    chosen = choose([Base(V2, v2), Base(V1, v1)], lambda: {os.getpid()})
    assert chosen.base == Base(V1, v1)
    nothing = choose([Base(V2, v2), Base(V1, tmp_path / "absent")], lambda: {os.getpid()})
    assert nothing.base is None and nothing.name == "sampling"
    assert why in nothing.why and f"cgroup v1: {tmp_path / 'absent'} is not writable" in nothing.why
    assert choose([], set).why == "no cgroup hierarchy with the memory controller is mounted"


def test_v2_moves_the_supervisor_into_a_leaf_and_gives_children_memory_max(tmp_path: Path) -> None:
    # Not the kernel (this machine binds memory to cgroup v1): the files the daemon writes.
    base = fake_v2(tmp_path / "roomd.service", procs="4242\n")
    cgroups = MemoryCgroups(choose([Base(V2, base)], lambda: {4242}))
    child = cgroups.attach(5151, 200 * MB)
    assert (base / SUPERVISOR_LEAF / "cgroup.procs").read_text() == "4242"
    assert (base / "cgroup.subtree_control").read_text() == "+memory"
    assert child.path == base / f"{CHILD_PREFIX}5151"
    assert (child.path / "memory.max").read_text() == str(200 * MB)
    assert (child.path / "cgroup.procs").read_text() == "5151"
    # The kernel's counters, as v2 writes them.
    (child.path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n")
    (child.path / "memory.peak").write_text(str(200 * MB))
    assert child.oom_kills() == 1
    assert child.describe_kill() == ("memory limit reached: the kernel ended the job at its 200 MB limit "
                                     "(cgroup v2, peak 200 MB)")


def test_kill_counters_are_read_from_key_value_lines() -> None:
    assert counter("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill") == 3  # v1 memory.oom_control
    assert counter("oom 0\noom_kill 0\n", "oom_kill") == 0
    assert counter(None, "oom_kill") == 0


@pytest.fixture
def kernel() -> MemoryCgroups:
    cgroups = MemoryCgroups.detect()
    if not cgroups.enforced:
        pytest.skip(f"the kernel offers no memory cgroup here: {cgroups.mechanism.why}")
    return cgroups


async def test_the_kernel_stops_a_process_at_its_cgroups_limit_and_the_cgroup_is_removed(
        kernel: MemoryCgroups) -> None:
    limit = 64 * MB
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline(); b = b'x' * (256 << 20)"],
                            stdin=subprocess.PIPE)
    child = kernel.attach(proc.pid, limit)
    try:
        assert child.members() == {proc.pid}
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        assert await asyncio.to_thread(proc.wait, 30) == -9
        assert child.oom_kills() == 1
        peak = child.peak()
        assert peak is not None and peak <= limit
    finally:
        await child.remove()
    assert not child.path.exists()


async def test_removing_a_cgroup_ends_what_is_left_in_it(kernel: MemoryCgroups) -> None:
    # A helper that left its process group (setsid) is still in the cgroup: it ends with it.
    proc = subprocess.Popen(["setsid", "sleep", "30"])
    child = kernel.attach(proc.pid, 64 * MB)
    await child.remove()
    assert await asyncio.to_thread(proc.wait, 5) == -9
    assert not child.path.exists()
