"""The cgroup v2 path of roomd's memory cgroups, under a real kernel: this project's machines bind
the memory controller to cgroup v1, so a virtual machine boots Debian 12's kernel with cgroup v2
alone and runs ``cgroup_v2_vm_probe.py`` (roomd's ``memory_cgroup`` module, loaded from this
checkout) in a cgroup set up the way systemd delegates one (``cgroup_v2_vm_init.sh``).

The kernel and an initramfs of the Debian root are built once and cached
(``packaging/vm-kernel.sh``); each run appends a small archive with the init, the probe and the
module under test. qemu emulates the CPU (TCG): this machine's /dev/kvm is ``kvm_pvm``, which
runs only guest kernels built for PVM, and a stock Debian kernel hangs in it before its first
message; emulated, the whole boot and probe take about 10 s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest
import structlog

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
MB = 1024 * 1024
LIMIT = 64 * MB  # the probe's limit for every child
BASE = "/sys/fs/cgroup/roomd.service"
LEAF = f"{BASE}/roomd-supervisor"
RESULT = "ROOMD-VM-RESULT "


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the cgroup v2 VM is required in CI but unavailable: {reason}")
    pytest.skip(f"no cgroup v2 VM: {reason}")


def vm_cache() -> Path:
    """The cached kernel and base initramfs, built by packaging/vm-kernel.sh (as root)."""
    script = REPO / "packaging" / "vm-kernel.sh"
    built = subprocess.run(["bash", str(script), "--check"], capture_output=True, text=True)
    if built.returncode != 0 and os.geteuid() != 0:
        _unavailable("building the kernel and initramfs (packaging/vm-kernel.sh) needs root")
    if built.returncode == 0:
        return Path(built.stdout.strip())
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"packaging/vm-kernel.sh failed:\n{done.stderr[-3000:]}"
    return Path(done.stdout.strip())


def overlay(directory: Path) -> Path:
    """The per-run archive: /init, the probe, the module under test and its two imports."""
    tree = directory / "overlay"
    site = tree / "probe" / "site"
    site.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__")
    for package in (psutil, structlog):
        assert package.__file__ is not None
        shutil.copytree(Path(package.__file__).parent, site / package.__name__, ignore=ignore)
    shutil.copy(REPO / "daemon" / "pool" / "memory_cgroup.py", tree / "probe" / "memory_cgroup.py")
    shutil.copy(HERE / "cgroup_v2_vm_probe.py", tree / "probe" / "cgroup_v2_vm_probe.py")
    shutil.copy(HERE / "cgroup_v2_vm_init.sh", tree / "init")
    (tree / "init").chmod(0o755)
    names = "\n".join(str(path.relative_to(tree)) for path in sorted(tree.rglob("*"))) + "\n"
    archive = directory / "overlay.cpio"
    with archive.open("wb") as out:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0"], cwd=tree, input=names.encode(),
                       stdout=out, check=True)
    return archive


def boot(cache: Path, directory: Path) -> dict[str, Any]:
    """Boot the VM once: the probe's result."""
    initrd = directory / "initrd.cpio"
    with initrd.open("wb") as out:  # the kernel unpacks concatenated archives in order
        for part in (cache / "base.cpio", overlay(directory)):
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    console = subprocess.run(
        ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "1", "-nographic", "-nodefaults",
         "-no-reboot", "-serial", "stdio", "-net", "none", "-kernel", str(cache / "vmlinuz"),
         "-initrd", str(initrd), "-append", "console=ttyS0 panic=-1 quiet rdinit=/init"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", timeout=300,
    ).stdout
    initrd.unlink()
    lines = [line for line in console.splitlines() if line.startswith(RESULT)]
    assert len(lines) == 1, f"no result from the VM; its console:\n{console[-4000:]}"
    result = json.loads(lines[0].removeprefix(RESULT))
    assert "error" not in result, result["error"]
    return result


@pytest.fixture(scope="module")
def vm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return boot(vm_cache(), tmp_path_factory.mktemp("vm"))


def test_a_delegated_cgroup_v2_is_chosen_and_the_supervisor_moves_into_a_leaf(vm: dict[str, Any]) -> None:
    assert vm["mechanism"] == "cgroup v2", vm["why"]
    assert vm["base"] == BASE
    allocate = vm["allocate"]
    # After the first attach: the probe (the "daemon") is in the leaf, the base is empty and
    # hands the memory controller to its children.
    assert allocate["probe cgroup"] == "0::/roomd.service/roomd-supervisor"
    assert allocate["leaf procs"] == str(allocate["probe pid"])
    assert allocate["base procs"] == ""
    assert "memory" in allocate["base subtree_control"].split()
    # Started again from the leaf, it still finds the delegated cgroup.
    assert vm["again"] == {"mechanism": "cgroup v2", "why": f"{LEAF} is writable", "base": LEAF}


def test_the_kernel_stops_a_child_at_its_memory_max_and_the_cgroup_is_removed(vm: dict[str, Any]) -> None:
    allocate = vm["allocate"]
    assert allocate["path"] == f"{BASE}/roomd-child-{allocate['pid']}"
    assert allocate["members"] == [allocate["pid"]]
    assert (allocate["memory.max"], allocate["memory.swap.max"], allocate["memory.oom.group"]) == (
        str(LIMIT), "0", "1")
    assert allocate["returncode"] == -9
    # With memory.oom.group the kernel counts the victim twice (as the victim and as a member
    # of the group it then kills): Linux 6.1 reports 2 here for one process.
    assert allocate["oom_kills"] >= 1
    assert "oom_group_kill 1" in allocate["memory.events"].splitlines()
    assert LIMIT - 4 * MB <= allocate["peak"] <= LIMIT
    assert allocate["describe_kill"] == ("memory limit reached: the kernel ended the job at its 64 MB limit "
                                         "(cgroup v2, peak 64 MB)")
    assert allocate["removed"]


def test_one_kill_ends_the_job_and_the_helper_it_started_in_its_own_session(vm: dict[str, Any]) -> None:
    group = vm["group kill"]
    # The helper (setsid) allocates; the job only waits for it: memory.oom.group ends both.
    assert group["members before"] == sorted([group["job"], group["helper"]])
    assert (group["job returncode"], group["helper returncode"]) == (-9, -9)
    assert group["oom_kills"] >= 2
    assert "oom_group_kill 1" in group["memory.events"].splitlines()
    assert group["peak"] <= LIMIT
    assert group["removed"]


def test_removing_the_cgroup_ends_a_setsid_leftover(vm: dict[str, Any]) -> None:
    leftover = vm["setsid leftover"]
    assert leftover["members"] == [leftover["pid"]]
    assert leftover["returncode"] == -9
    assert leftover["removed"]
