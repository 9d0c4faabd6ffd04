"""The zygote: a template process that imports one plugin and forks children on request.

Run as ``python -m roomd.child.zygote --control-fd N --target module:attr ...`` by
the supervisor, with a clean environment. It imports the plugin (so its modules' pages are
shared copy-on-write by every child), starts no threads and no event loop, and then serves
``Fork`` requests on its SOCK_SEQPACKET control socket. Each child is double-forked: the
intermediate exits at once, so the child is re-parented to the supervisor (a child
subreaper) which reaps it and gets its true exit status. End of stream on the control
socket ends the zygote; children already forked live on.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import socket
import struct
import sys
import traceback

import msgspec

from roomd.ipc.control import MAX_CONTROL_PACKET, ControlMessage, Fork, Forked, ForkFailed, ZygoteReady
from roomd.ipc.messages import EXIT_INTERNAL_ERROR, PluginDescription

from .plugin import PluginLoadError, describe, import_whole_package, load_options
from .runtime import child_main

_PID = struct.Struct(">i")


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        import threading

        return threading.active_count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="roomd-zygote")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--plugin", required=True)
    parser.add_argument("--generation", type=int, default=0)
    args = parser.parse_args(argv)

    # A fatal signal (SIGABRT, SIGSEGV) prints every thread's stack to stderr (the journal
    # under systemd) before the process dies; the children forked from here inherit it.
    faulthandler.enable(all_threads=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=args.control_fd)
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(ControlMessage)

    description: PluginDescription | None = None
    try:
        options = load_options(args.target)
        description = describe(options)
        # This generation's code is what is imported now: lazy imports must not later read
        # the files of a newer version installed while this generation is kept.
        for problem in import_whole_package(args.target):
            print(f"roomd zygote {os.getpid()}: module stays lazy: {problem}", file=sys.stderr)
    except PluginLoadError as exc:
        control.send(encoder.encode(ZygoteReady(pid=os.getpid(), error=str(exc))))
        return 1
    except Exception as exc:
        control.send(encoder.encode(ZygoteReady(pid=os.getpid(), error=f"{type(exc).__name__}: {exc}")))
        return 1
    # Warm imports every child needs, their pages shared: without this a job's first
    # ctx.connect() pays ~100 ms importing livekit.rtc. Importing it starts no thread of its
    # own, but it imports numpy, whose OpenBLAS starts a pool unless held to one thread (our
    # children's default, see child_environment); with more, the plugin decides.
    import uvloop  # noqa: F401

    if os.environ.get("OPENBLAS_NUM_THREADS") == "1" and os.environ.get("OMP_NUM_THREADS") == "1":
        import livekit.rtc  # noqa: F401
        from livekit.rtc import _ffi_client

        # Map the native library here too (the resource lookup imports zipfile and friends,
        # dlopen relocates ~50 MB): a job's first connect then only starts the FFI runtime.
        # Loading starts no thread; the runtime (which does) still starts in the child.
        _ffi_client.get_ffi_lib()

    threads = _threads()
    control.send(encoder.encode(ZygoteReady(pid=os.getpid(), description=description, threads=threads)))

    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(control, MAX_CONTROL_PACKET, 4)
        except InterruptedError:
            continue
        except OSError:
            return 0
        if not data:
            for fd in fds:
                os.close(fd)
            return 0  # the supervisor closed the control socket: we are done
        try:
            request = decoder.decode(data)
        except msgspec.MsgspecError as exc:
            print(f"roomd zygote {os.getpid()}: bad control packet: {exc}", file=sys.stderr)
            for fd in fds:
                os.close(fd)
            return 2
        if not isinstance(request, Fork) or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            print(f"roomd zygote {os.getpid()}: unexpected control message {request!r}", file=sys.stderr)
            return 2
        child_sock = socket.socket(fileno=fds[0])
        try:
            pid = _fork_child(control, child_sock, options, args)
            reply: ControlMessage = Forked(child_id=request.child_id, pid=pid)
        except OSError as exc:
            reply = ForkFailed(child_id=request.child_id, error=f"fork failed: {exc}")
        finally:
            child_sock.close()  # the child has its own copy; the zygote keeps no child sockets
        control.send(encoder.encode(reply))


def _fork_child(control: socket.socket, child_sock: socket.socket, options: object,
                args: argparse.Namespace) -> int:
    read_end, write_end = os.pipe()
    intermediate = os.fork()
    if intermediate == 0:
        os.close(read_end)
        try:
            pid = os.fork()
        except OSError:
            os._exit(1)
        if pid == 0:
            os.close(write_end)
            control.close()
            # Lead a process group of our own: whatever a job starts joins it, so the job's
            # helpers can be found and ended with the job (roomd.ipc.procs).
            os.setpgid(0, 0)
            try:
                child_main(child_sock, options, target=args.target,  # type: ignore[arg-type]
                           plugin=args.plugin, generation=args.generation)
            finally:
                traceback.print_exc()
                os._exit(EXIT_INTERNAL_ERROR)
        os.write(write_end, _PID.pack(pid))
        os._exit(0)
    os.close(write_end)
    try:
        data = b""
        while len(data) < _PID.size:
            chunk = os.read(read_end, _PID.size - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(read_end)
        os.waitpid(intermediate, 0)
    if len(data) != _PID.size:
        raise OSError("the intermediate process exited before reporting the child's pid")
    (pid,) = _PID.unpack(data)
    return int(pid)


if __name__ == "__main__":
    sys.exit(main())
