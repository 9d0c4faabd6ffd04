"""Runs inside the VM test_memory_cgroup_v2_vm.py boots (Debian's python3, as root, alone in a
cgroup v2 the memory controller is delegated to): roomd's memory_cgroup module, loaded from
its file, against the real kernel. Prints one line, ``ROOMD-VM-RESULT {json}``; the test on
the host asserts. Only the module under test and psutil/structlog are in the VM."""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
LIMIT = 64 * 1024 * 1024
ALLOCATE = "import sys; sys.stdin.readline(); b = b'x' * (256 << 20)"
# A job that starts a helper in a session of its own; the helper allocates, the job only waits.
JOB_WITH_HELPER = (
    "import subprocess, sys; sys.stdin.readline(); "
    f"h = subprocess.Popen([sys.executable, '-c', {ALLOCATE!r}], start_new_session=True); "
    "print(h.pid, flush=True); h.wait()"
)

spec = importlib.util.spec_from_file_location("memory_cgroup", "/probe/memory_cgroup.py")
assert spec is not None and spec.loader is not None
mc = importlib.util.module_from_spec(spec)
sys.modules["memory_cgroup"] = mc
spec.loader.exec_module(mc)


def read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError as exc:
        return f"<{exc.strerror}>"


def wait_status(pid: int) -> int:
    """The exit status of a pid we reap (a child, or an orphan adopted as subreaper), as
    Popen.returncode says it: -N for a signal."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


async def allocate_past_the_limit(cgroups: Any, base: Path) -> dict[str, Any]:
    proc = subprocess.Popen([sys.executable, "-c", ALLOCATE], stdin=subprocess.PIPE)
    child = cgroups.attach(proc.pid, LIMIT)
    out: dict[str, Any] = {
        "path": str(child.path),
        "members": sorted(child.members()),
        "pid": proc.pid,
        "memory.max": read(child.path / "memory.max"),
        "memory.swap.max": read(child.path / "memory.swap.max"),
        "memory.oom.group": read(child.path / "memory.oom.group"),
        "base subtree_control": read(base / "cgroup.subtree_control"),
        "base procs": read(base / "cgroup.procs"),
        "leaf procs": read(base / mc.SUPERVISOR_LEAF / "cgroup.procs"),
        "probe pid": os.getpid(),
        "probe cgroup": read(Path("/proc/self/cgroup")),
    }
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    proc.stdin.close()
    out["returncode"] = await asyncio.to_thread(proc.wait, 120)
    out["oom_kills"] = child.oom_kills()
    out["peak"] = child.peak()
    out["memory.events"] = read(child.path / "memory.events")
    out["describe_kill"] = child.describe_kill()
    await child.remove()
    out["removed"] = not child.path.exists()
    return out


async def group_kill_takes_the_helper_and_the_job(cgroups: Any) -> dict[str, Any]:
    job = subprocess.Popen([sys.executable, "-c", JOB_WITH_HELPER], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE)
    child = cgroups.attach(job.pid, LIMIT)
    assert job.stdin is not None and job.stdout is not None
    job.stdin.write(b"go\n")
    job.stdin.flush()
    helper = int(await asyncio.to_thread(job.stdout.readline))
    members = sorted(child.members())
    job.stdin.write(b"go\n")  # the helper shares the job's stdin: now it allocates
    job.stdin.close()
    job_status = await asyncio.to_thread(job.wait, 120)
    # The helper is orphaned when the job dies: as the subreaper we reap it.
    helper_status = await asyncio.to_thread(wait_status, helper)
    out = {
        "members before": members, "job": job.pid, "helper": helper,
        "job returncode": job_status, "helper returncode": helper_status,
        "oom_kills": child.oom_kills(), "peak": child.peak(),
        "memory.events": read(child.path / "memory.events"),
    }
    await child.remove()
    out["removed"] = not child.path.exists()
    return out


async def removal_ends_a_setsid_leftover(cgroups: Any) -> dict[str, Any]:
    proc = subprocess.Popen(["setsid", "sleep", "30"])
    child = cgroups.attach(proc.pid, LIMIT)
    members = sorted(child.members())
    await child.remove()
    return {"members": members, "pid": proc.pid,
            "returncode": await asyncio.to_thread(proc.wait, 60), "removed": not child.path.exists()}


async def main() -> dict[str, Any]:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    result: dict[str, Any] = {"kernel": os.uname().release}
    cgroups = mc.MemoryCgroups.detect()
    result["mechanism"] = cgroups.mechanism.name
    result["why"] = cgroups.mechanism.why
    if not cgroups.enforced:
        return result
    base = cgroups.mechanism.base.path
    result["base"] = str(base)
    result["allocate"] = await allocate_past_the_limit(cgroups, base)
    result["group kill"] = await group_kill_takes_the_helper_and_the_job(cgroups)
    result["setsid leftover"] = await removal_ends_a_setsid_leftover(cgroups)
    # A daemon started again in the leaf it moved itself into still finds the delegated cgroup.
    again = mc.MemoryCgroups.detect()
    result["again"] = {"mechanism": again.mechanism.name, "why": again.mechanism.why,
                       "base": str(again.mechanism.base.path) if again.enforced else None}
    return result


if __name__ == "__main__":
    try:
        report = asyncio.run(main())
    except BaseException:  # everything, failures too, goes to the host as the result
        report = {"error": traceback.format_exc()}
    print("ROOMD-VM-RESULT " + json.dumps(report), flush=True)
